"""Mailjet: many ``time`` and ``Payload`` values through anymail and us.

anymail reads time with ``datetime.fromtimestamp()`` (a ValueError gives no
timestamp) and the metadata with ``json.loads(Payload)`` (a ValueError gives
none); both are generated here value by value.
"""

import math
from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import anymail_fields, our_fields, same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours


def _fixture(**fields: Any):
    event = {"event": "sent", "time": 1498093527, "MessageID": 12345678901234567, "email": "recipient@example.com"}
    event.update(fields)
    return from_spec("mailjet", "case", {"description": "generated", "body": [event]})


# Values anymail reads: ours must be the same instant (or None).
TIMES = [1498093527, 1498093527.123456, 0, -1, True, 99999999999999, -1e11, math.nan]


@pytest.mark.parametrize("value", TIMES, ids=repr)
def test_times_anymail_reads_are_read_alike(value: Any) -> None:
    result = run_anymail(_fixture(time=value))
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(_fixture(time=value))
    theirs = result.events[0].timestamp
    assert same(ours.timestamp, theirs), f"ours {ours.timestamp!r}, anymail {theirs!r}"


# Numeric text, on which anymail crashes: read as anymail reads the number it spells.
NUMERIC_TEXTS = ["1498093527", "1498093527.5", " 1498093527 ", "1.498093527e9", "99999999999999", "-1"]


@pytest.mark.parametrize("text", NUMERIC_TEXTS)
def test_numeric_text_is_read_as_anymail_reads_the_number(text: str) -> None:
    assert run_anymail(_fixture(time=text)).error is not None
    as_number = run_anymail(_fixture(time=float(text)))
    [ours] = run_ours(_fixture(time=text))
    assert same(ours.timestamp, as_number.events[0].timestamp)


NOT_TIMES = ["yesterday", "", "nan", "inf", "2017-06-22T01:05:27Z", 1e20, [1498093527], {"s": 1}]


@pytest.mark.parametrize("value", NOT_TIMES, ids=repr)
def test_what_anymail_crashes_on_is_malformed(value: Any) -> None:
    assert run_anymail(_fixture(time=value)).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="time"):
        run_ours(_fixture(time=value))


# EventPayload text anymail reads (or drops, when it is not JSON).
PAYLOADS = [
    "", "not json", '{"a": 1}', '{"a": {"b": [1, null]}}', "null", " {} ",
    '{"a": 1} trailing', "{'a': 1}", '{"n": NaN}',
]  # fmt: skip


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_metadata_as_in_anymail(payload: str) -> None:
    result = run_anymail(_fixture(Payload=payload))
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(_fixture(Payload=payload))
    assert same(our_fields(ours)["metadata"], anymail_fields(result.events[0], "Mailjet")["metadata"])


# JSON that is no object: anymail makes it the metadata; metadata is an object.
@pytest.mark.parametrize("payload", ["[1, 2]", "12345", '"order-42"', "true"])
def test_payload_json_that_is_no_object_is_malformed(payload: str) -> None:
    assert run_anymail(_fixture(Payload=payload)).events is not None
    with pytest.raises(normalizer.MalformedPayload, match="Payload is not an object"):
        run_ours(_fixture(Payload=payload))
