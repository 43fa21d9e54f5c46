"""Brevo values of many kinds through anymail and us: ts_epoch, tags/tag and X-Mailin-custom.

Brevo (and SendinBlue, the same view under its former name) sends these fields
with types and units that vary by event and by how the message was sent.
"""

import json
import math
from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours

SLUGS = ["brevo", "sendinblue"]


def _fixture(slug: str, **fields: Any):
    body = {"event": "delivered", "email": "jane.doe@example.com", "message-id": "<m-1@smtp-relay.mailin.fr>", **fields}
    return from_spec(slug, "case", {"description": f"delivered with {fields!r}", "body": body})


TS_EPOCH_NUMBERS = [
    1715675527482,
    1715675527482.5,
    1715675527482.0004,
    1604933623,  # seconds sent as milliseconds: January 1970, as in anymail
    0,
    -1,
    -62135596800000,  # 0001-01-01
    253402300799999,  # 9999-12-31T23:59:59.999
    253402300800000,  # year 10000: no timestamp
    1e17,
    -1e15,
    2**63,
    True,
    math.nan,
]


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("value", TS_EPOCH_NUMBERS, ids=repr)
def test_numeric_ts_epoch_is_read_as_anymail_reads_it(slug: str, value: Any) -> None:
    fixture = _fixture(slug, ts_epoch=value)
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(fixture)
    assert same(ours.timestamp, result.events[0].timestamp), f"ours {ours.timestamp!r}, anymail {result.events[0].timestamp!r}"


TS_EPOCH_CRASHES = [1e20, math.inf, -math.inf, 10**400, [1715675527482], {"ms": 1715675527482}, "soon", "", "nan", "Infinity"]


@pytest.mark.parametrize("value", TS_EPOCH_CRASHES, ids=repr)
def test_ts_epoch_anymail_cannot_read_is_malformed(value: Any) -> None:
    fixture = _fixture("brevo", ts_epoch=value)
    assert run_anymail(fixture).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="ts_epoch"):
        run_ours(fixture)


TS_EPOCH_TEXTS = ["1715675527482", "1715675527482.5", " 1715675527482 ", "1.715675527482e12", "-1", "1e17", "0"]


@pytest.mark.parametrize("text", TS_EPOCH_TEXTS)
def test_ts_epoch_text_is_read_as_the_number_it_spells(text: str) -> None:
    # Departure: anymail crashes on text; we give what it gives for the number.
    as_number = anymail_timestamp(_fixture("brevo", ts_epoch=float(text)))
    [ours] = run_ours(_fixture("brevo", ts_epoch=text))
    assert same(ours.timestamp, as_number)


def anymail_timestamp(fixture: Any) -> Any:
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    return result.events[0].timestamp


TAG_FIELDS = [
    {"tags": ["order-shipped", "transactional"]},
    {"tags": ["order-shipped"], "tag": '["order-shipped"]'},
    {"tags": []},
    {"tags": None},
    {"tags": "single"},
    {"tags": [None, "kept"]},
    {"tags": ["été", "📦"]},
    {"tag": "header-tag"},
    {"tag": None},
    {"tag": ""},
    {"tag": '["a","b"]'},
    {},
]


@pytest.mark.parametrize("fields", TAG_FIELDS, ids=json.dumps)
def test_tags_are_anymails(fields: dict[str, Any]) -> None:
    fixture = _fixture("brevo", ts_epoch=1715675527482, **fields)
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    theirs = result.events[0].tags
    # Departure: tags is always a list of str.
    expected = [] if theirs is None else [theirs] if isinstance(theirs, str) else [t for t in theirs if t is not None]
    [ours] = run_ours(fixture)
    assert ours.tags == expected


def test_tag_list_gives_its_tags_where_anymail_nests_it() -> None:
    fixture = _fixture("brevo", tag=["transactionalTag", "welcome"])
    assert run_anymail(fixture).events[0].tags == [["transactionalTag", "welcome"]]
    [ours] = run_ours(fixture)
    assert ours.tags == ["transactionalTag", "welcome"]


CUSTOM_HEADERS = [
    '{"order_id": "10492", "customer": 42}',
    '{"nested": {"a": [1, 2.5, null, true]}}',
    "{}",
    "null",
    None,
    42,
    {"order_id": "10492"},
    '{"ville": "Besançon"}',
    # Not a JSON object: anymail crashes or passes a non-dict; no metadata for us.
    "some_custom_header",
    "",
    "[1, 2]",
    '"text"',
    "12345",
]


@pytest.mark.parametrize("custom", CUSTOM_HEADERS, ids=repr)
def test_x_mailin_custom_is_metadata_only_when_a_json_object(custom: Any) -> None:
    fixture = _fixture("brevo", **{"X-Mailin-custom": custom})
    result = run_anymail(fixture)
    theirs = result.events[0].metadata if result.events is not None else None
    [ours] = run_ours(fixture)
    assert ours.metadata == (theirs if isinstance(theirs, dict) else {})
