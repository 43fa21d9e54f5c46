"""``espstream send ESP FILE|-``: post a webhook body to the gateway, signed as the ESP signs it.

To try the pipeline by hand with a capture or one of tests/fixtures/ (whose
format, body plus content type plus headers, ``send`` reads too), with the
credentials and signing keys of the same ESPSTREAM_* settings the gateway reads.
"""

import argparse
import base64
import json
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .preflight import UNREACHABLE

DEFAULT_URL = "http://127.0.0.1:8000"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# A fixture's keys (tests/fixtures/README.md): a description and exactly one body key.
_FIXTURE_BODIES = ("body", "form", "body_text", "body_base64")
_FIXTURE_KEYS = {"description", "content_type", "headers", "multipart", "expect", *_FIXTURE_BODIES}


def add(commands: argparse._SubParsersAction) -> None:
    send = commands.add_parser(
        "send",
        help="post a webhook body (a file, a tests/fixtures/ .json, or - for stdin) to the gateway, signed for the ESPs that sign",
        description=(
            "Post FILE's bytes to the gateway's /webhooks/ESP/tracking/, with basic auth from ESPSTREAM_WEBHOOK_SECRET's"
            " first credential and the ESP's signature made with the gateway's own ESPSTREAM_* signing keys (Mailgun,"
            " Mandrill, MailerSend, Mailtrap, Resend, Unisender Go; Postal, SendGrid and Amazon SES sign with keys the"
            " gateway does not hold). A fixture of tests/fixtures/ gives its body, content type and headers. Prints the"
            " answer's status and request id."
        ),
        epilog="Exit status: 0 on a 2xx answer; 1 otherwise; 3 if the gateway did not answer.",
    )
    send.add_argument("esp", metavar="ESP", help="the ESP (slug or name), e.g. postmark")
    send.add_argument("file", metavar="FILE", help="the body: a file, - for stdin, or a fixture .json")
    send.add_argument("--url", default=DEFAULT_URL, help=f"the gateway (default {DEFAULT_URL})")
    send.add_argument(
        "--content-type",
        metavar="TYPE",
        help="the body's content type, e.g. 'multipart/form-data; boundary=...' for a Mailgun legacy capture"
        " (default: the fixture's; else JSON, form or multipart as the body looks)",
    )
    send.add_argument("--header", "-H", action="append", default=[], metavar="'NAME: VALUE'", help="another request header; repeat")
    send.add_argument("--raw", action="store_true", help="send a .json file as the body even if it looks like a fixture")
    send.set_defaults(func=_send)


def _send(args: argparse.Namespace) -> int:
    import httpx

    from espstream.gateway.settings import GatewaySettings
    from espstream.schemas.esps import esp_slug
    from espstream.signing import Unsignable, Webhook, sign

    settings = GatewaySettings()  # a refused setting is main()'s to say
    try:
        esp = esp_slug(args.esp)
        body, content_type, headers = _read(args.file, raw=args.raw)
        headers |= dict(_header(text) for text in args.header)
    except (ValueError, OSError) as error:
        print(f"espstream send: {error}", file=sys.stderr)
        return 2
    content_type = args.content_type or content_type or _guessed_type(args.file, body)
    url = f"{args.url.rstrip('/')}/webhooks/{esp}/tracking/"
    credentials = settings.webhook_secret[0] if settings.webhook_secret else None
    webhook = Webhook(esp, url, body, content_type, headers, credentials)
    try:
        webhook = sign(webhook, settings)
    except Unsignable as error:
        print(f"espstream send: {esp}: {error}", file=sys.stderr)
    request_headers = {**webhook.headers, **({"Content-Type": content_type} if content_type else {})}
    auth = tuple(credentials.split(":", 1)) if credentials else None
    try:
        response = httpx.post(url, content=webhook.body, headers=request_headers, auth=auth, timeout=30.0)
    except httpx.TransportError as error:
        print(f"espstream send: the gateway at {args.url} did not answer ({error}); is `espstream run` running?", file=sys.stderr)
        return UNREACHABLE
    print(f"{response.status_code} {response.reason_phrase}  request id {response.headers.get('x-request-id', '(none)')}")
    if not response.is_success:
        detail = response.text.strip().splitlines()[0] if response.text.strip() else ""
        if detail:
            print(f"espstream send: {detail}", file=sys.stderr)
        return 1
    return 0


def _read(path: str, raw: bool) -> tuple[bytes, str | None, dict[str, str]]:
    """The body, its content type if known, and the headers to send: a fixture's, or the file's bytes as they are."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    spec = None if raw or not path.endswith(".json") else _fixture_spec(data)
    if spec is None:
        return data, None, {}
    return _fixture_request(spec)


def _fixture_spec(data: bytes) -> dict[str, Any] | None:
    try:
        spec = json.loads(data)
    except ValueError:
        return None
    if not isinstance(spec, dict) or "description" not in spec or set(spec) - _FIXTURE_KEYS:
        return None
    return spec if sum(key in spec for key in _FIXTURE_BODIES) == 1 else None


def _fixture_request(spec: dict[str, Any]) -> tuple[bytes, str | None, dict[str, str]]:
    """A fixture's request as tests/support/parity/fixtures.py builds it (a multipart body with a boundary of its own)."""
    headers = dict(spec.get("headers", {}))
    if "body" in spec:
        return json.dumps(spec["body"], ensure_ascii=False).encode("utf-8"), spec.get("content_type", JSON), headers
    if "body_text" in spec:
        return spec["body_text"].encode("utf-8"), spec.get("content_type"), headers
    if "body_base64" in spec:
        return base64.b64decode(spec["body_base64"], validate=True), spec.get("content_type"), headers
    items = spec["form"]
    if spec.get("multipart"):
        body, content_type = _multipart(items)
        return body, spec.get("content_type", content_type), headers
    return urlencode([(item[0], item[1]) for item in items]).encode("ascii"), spec.get("content_type", FORM), headers


def _multipart(items: list[list[Any]]) -> tuple[bytes, str]:
    """multipart/form-data of a fixture's ``[name, value]`` fields and ``[name, content, {filename, content_type}]`` files."""
    boundary = f"espstream-send-{secrets.token_hex(8)}"
    chunks = []
    for name, value, *file in items:
        disposition = f'form-data; name="{_quoted(name)}"'
        part_headers = ""
        if file:
            disposition += f'; filename="{_quoted(file[0]["filename"])}"'
            part_headers = f"Content-Type: {file[0].get('content_type', 'text/plain')}\r\n"
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{part_headers}\r\n{value}\r\n")
    chunks.append(f"--{boundary}--\r\n")
    return "".join(chunks).encode("utf-8"), f"multipart/form-data; boundary={boundary}"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _guessed_type(path: str, body: bytes) -> str | None:
    """JSON, multipart (its boundary from the first line) or a url-encoded form, as the body looks; else none."""
    start = body.lstrip()[:1]
    if path.endswith(".json") or start in (b"{", b"["):
        return JSON
    if body.startswith(b"--"):
        boundary = body.split(b"\r\n", 1)[0].split(b"\n", 1)[0][2:].decode("latin-1").strip()
        return f"multipart/form-data; boundary={boundary}"
    if b"=" in body and not any(char in body for char in b" \r\n\t"):
        return FORM
    return None


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"--header {text!r} is not 'NAME: VALUE'")
    return name.strip(), value.strip()
