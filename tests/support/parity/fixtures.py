"""Webhook fixtures: recorded-looking ESP requests, from ``tests/fixtures/<slug>/<name>.json``.

The file format is documented in ``tests/fixtures/README.md``.
"""

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
MULTIPART_BOUNDARY = "espstream-fixture-boundary"

_BODY_KEYS = ("body", "form", "body_text", "body_base64")


@dataclass(frozen=True)
class Departure:
    """Where our documented behaviour differs from anymail's (anymail crashes, or we depart)."""

    why: str
    # The NormalizeError subclass we raise, and a piece of its message...
    error: str | None = None
    message: str = ""
    # ...or our events: per event, the fields whose value differs from anymail's.
    events: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True)
class Fixture:
    slug: str
    name: str
    description: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]
    # The body as the ESP module sees it (JSON value, or {field: [values]} for forms):
    # a single event's esp_event unless a departure says otherwise.
    parsed_body: Any
    departure: Departure | None = None

    @property
    def id(self) -> str:
        return f"{self.slug}/{self.name}"


def fixtures_for(slug: str) -> list[Fixture]:
    return [load(path) for path in sorted((FIXTURES_DIR / slug).glob("*.json"))]


def load(path: Path) -> Fixture:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        return from_spec(path.parent.name, path.stem, spec)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"bad fixture {path}: {error}") from error


def from_spec(slug: str, name: str, spec: dict[str, Any]) -> Fixture:
    """A fixture from its JSON form (also for cases generated in a test)."""
    unknown = set(spec) - {"description", "content_type", "headers", "multipart", "expect", *_BODY_KEYS}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    given = [key for key in _BODY_KEYS if key in spec]
    if len(given) != 1:
        raise ValueError(f"exactly one of {_BODY_KEYS} is needed, not {given}")
    headers = dict(spec.get("headers", {}))
    if any(header.lower() == "content-type" for header in headers):
        raise ValueError("the content type goes in 'content_type', not in 'headers'")

    content_type = spec.get("content_type")
    if "body" in spec:
        body = json.dumps(spec["body"], ensure_ascii=False).encode("utf-8")
        parsed_body = spec["body"]
        content_type = spec.get("content_type", "application/json")
    elif "form" in spec:
        pairs = [_form_item(item) for item in spec["form"]]
        parsed_body = {}
        for field, value, file in pairs:
            if file is None:
                parsed_body.setdefault(field, []).append(value)
        if spec.get("multipart"):
            body = _multipart_body(pairs)
            content_type = spec.get("content_type", f"multipart/form-data; boundary={MULTIPART_BOUNDARY}")
        else:
            if any(file is not None for _, _, file in pairs):
                raise ValueError("file parts need 'multipart': true")
            body = urlencode([(field, value) for field, value, _ in pairs]).encode("ascii")
            content_type = spec.get("content_type", "application/x-www-form-urlencoded")
    elif "body_text" in spec:
        body, parsed_body = spec["body_text"].encode("utf-8"), None
    else:
        body, parsed_body = base64.b64decode(spec["body_base64"], validate=True), None

    return Fixture(
        slug=slug,
        name=name,
        description=spec["description"],
        body=body,
        content_type=content_type,
        headers=headers,
        parsed_body=parsed_body,
        departure=_departure(spec["expect"]) if "expect" in spec else None,
    )


def _departure(expect: dict[str, Any]) -> Departure:
    unknown = set(expect) - {"why", "error", "message", "events"}
    if unknown or not expect.get("why") or ("error" in expect) == ("events" in expect):
        raise ValueError("'expect' needs 'why' and exactly one of 'error' (with 'message') or 'events'")
    events = expect.get("events")
    return Departure(
        why=expect["why"],
        error=expect.get("error"),
        message=expect.get("message", ""),
        events=None if events is None else tuple(events),
    )


def _form_item(item: list[Any]) -> tuple[str, str, dict[str, str] | None]:
    """[name, value] or, for a file part, [name, content, {"filename": ..., "content_type": ...}]."""
    if len(item) == 2:
        return item[0], item[1], None
    field, value, file = item
    return field, value, {"filename": file["filename"], "content_type": file.get("content_type", "text/plain")}


def _multipart_body(pairs: list[tuple[str, str, dict[str, str] | None]]) -> bytes:
    lines: list[str] = []
    for field, value, file in pairs:
        lines.append(f"--{MULTIPART_BOUNDARY}")
        disposition = f'form-data; name="{_quoted(field)}"'
        if file is not None:
            disposition += f'; filename="{_quoted(file["filename"])}"'
        lines.append(f"Content-Disposition: {disposition}")
        if file is not None:
            lines.append(f"Content-Type: {file['content_type']}")
        lines += ["", value]
    lines += [f"--{MULTIPART_BOUNDARY}--", ""]
    return "\r\n".join(lines).encode("utf-8")


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
