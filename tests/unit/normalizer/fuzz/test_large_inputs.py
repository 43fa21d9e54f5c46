"""Bodies of 1-2 MB (the gateway accepts up to 2.5 MB) for every ESP: no superlinear blowup.

Each case's values are long runs of what makes text parsers backtrack or recurse
(dots and backslashes in addresses, nested comments, quotes), or a batch of
thousands of events. Linear work on 2 MB takes well under a second; quadratic
work takes hours, so a generous deadline tells them apart on any machine.
"""

import json
from functools import cache
from typing import Any

import pytest

from espstream.normalizer.esps import PARSERS
from tests.support.fuzz.harness import check
from tests.support.fuzz.strategies import JSON_TEXT, render, replace, seed_specs, walk

SLUGS = sorted(PARSERS)
BUDGET_BYTES = 1_200_000
SECONDS = 30.0
# Every ESP gets the first two (quadratic in the standard library's address parser) and one of the others.
PATTERNS = [".", "\\"]
MORE_PATTERNS = ["(", '"\\', "a.", "<@", " ", "é", "%"]
# Keys whose value decides what the parser does with the rest: kept, so the long values are read.
STEERING = ("event", "type", "recordtype", "notificationtype", "eventtype", "status", "direction", "tracking")


def _text_paths(root: Any, form: bool = False) -> list[tuple[Any, ...]]:
    """Where the text values are (a form's field names stay)."""
    paths = []
    for path, node in walk(root):
        if form and path[1:2] != (1,):
            continue
        key = next((step for step in reversed(path) if isinstance(step, str) and step != JSON_TEXT), "")
        if isinstance(node, str) and json_text_free(node) and key.lower() not in STEERING:
            paths.append(path)
    return paths


def json_text_free(text: str) -> bool:
    return text[:1] not in ("{", "[")


@cache
def _richest(slug: str) -> dict[str, Any]:
    """The fixture with events and the most text values (where a long value reaches most parsing code)."""
    specs = [spec for spec in seed_specs(slug) if ("body" in spec or "form" in spec) and _has_events(slug, spec)]
    return max(specs, key=lambda spec: len(_text_paths(spec.get("body", spec.get("form")), "form" in spec)))


def _has_events(slug: str, spec: dict[str, Any]) -> bool:
    request = render(spec)
    events = check(slug, request.body, request.content_type, request.headers)
    return isinstance(events, list) and any(event.recipient for event in events)


def long_values(slug: str, pattern: str) -> Any:
    """The richest fixture with every text value a long run of ``pattern``, 1.2 MB in all."""
    spec = _richest(slug)
    root = spec.get("body", spec.get("form"))
    paths = _text_paths(root, "form" in spec)
    run = pattern * (BUDGET_BYTES // max(len(paths), 1) // len(pattern.encode()))
    for path in paths:
        root = replace(root, path, run)
    return {**spec, "body" if "body" in spec else "form": root}


def many_events(slug: str) -> Any:
    """The richest fixture with its largest array (a batch, or one inside JSON text) grown to 1.2 MB."""
    spec = _richest(slug)
    root = spec.get("body", spec.get("form"))
    arrays = [(path, node) for path, node in walk(root) if isinstance(node, list) and node]
    if not arrays:
        path, node = (), [root]
    else:
        path, node = max(arrays, key=lambda item: len(json.dumps(item[1])))
    copies = BUDGET_BYTES // len(json.dumps(node)) + 1
    return {**spec, "body" if "body" in spec else "form": replace(root, path, node * copies)}


def many_keys(slug: str) -> Any:
    """The richest fixture with 50 000 unknown keys in each of its objects' first level."""
    spec = _richest(slug)
    root = spec.get("body", spec.get("form"))
    objects = [(path, node) for path, node in walk(root) if isinstance(node, dict)]
    if not objects:
        return {**spec, "body" if "body" in spec else "form": root}
    path, node = objects[0]
    grown = {**node, **{f"espstream_key_{index}": index for index in range(50_000)}}
    return {**spec, "body" if "body" in spec else "form": replace(root, path, grown)}


CASES = [
    (slug, pattern)
    for index, slug in enumerate(SLUGS)
    for pattern in [*PATTERNS, MORE_PATTERNS[index % len(MORE_PATTERNS)]]
]


@pytest.mark.parametrize(("slug", "pattern"), CASES)
def test_long_values_are_handled_in_linear_time(slug: str, pattern: str) -> None:
    request = render(long_values(slug, pattern))
    assert len(request.body) > 1_000_000, "not the size this test is about"
    check(slug, request.body, request.content_type, request.headers, seconds=SECONDS)


@pytest.mark.parametrize("slug", SLUGS)
def test_huge_batches_and_objects_are_handled_in_linear_time(slug: str) -> None:
    for spec in (many_events(slug), many_keys(slug)):
        request = render(spec)
        check(slug, request.body, request.content_type, request.headers, seconds=SECONDS)
