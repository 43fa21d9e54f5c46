"""Bad bodies for every ESP: events or a NormalizeError (a dead letter with its reason), never a crash."""

import pytest

from espstream import normalizer
from espstream.normalizer.esps import PARSERS
from espstream.schemas import TrackingEvent

BAD_BODIES = {
    "empty": b"",
    "null": b"null",
    "number": b"42",
    "string": b'"text"',
    "empty list": b"[]",
    "empty object": b"{}",
    "list of nulls": b"[null, null]",
    "list of numbers": b"[1, 2]",
    "not json": b"<html>hello</html>",
    "not utf-8": b"\xff\xfe\x00{",
    "deep list": b"[" * 200_000,
    "deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "form": b"a=1&b=%ZZ&mandrill_events=%5B1%5D",
}
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", None]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=list(BAD_BODIES))
@pytest.mark.parametrize("slug", sorted(PARSERS))
def test_bad_bodies_give_events_or_a_normalize_error(slug: str, body: bytes, content_type: str | None) -> None:
    try:
        events = normalizer.normalize(slug, body, content_type=content_type)
    except normalizer.NormalizeError as error:
        assert str(error), "a dead letter needs a reason"
        return
    assert all(isinstance(event, TrackingEvent) for event in events)
