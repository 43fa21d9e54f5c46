"""SendGrid timestamps, many values through anymail and us.

anymail hands the JSON value to ``datetime.fromtimestamp``: numbers (and
booleans) are read, a year out of range gives no timestamp, numeric text
crashes it. We read numeric text as the number it spells.
"""

import json

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import assert_epoch_timestamp_as_anymails, run_anymail, run_ours


def _fixture(timestamp: object) -> object:
    return from_spec("sendgrid", "timestamp", {
        "description": f"timestamp {timestamp!r}",
        "body": [{"email": "a@example.com", "event": "delivered", "sg_event_id": "ts", "timestamp": timestamp}],
    })  # fmt: skip


NUMBERS = [
    1513299569,
    1513299569.5,
    1461095250.123456,
    0,
    -1,
    -86400.25,
    True,
    False,
    253402300799,  # the last second of year 9999
    253402300800,  # year 10000: anymail gives no timestamp
    -62135596801,  # year 0: no timestamp
    10**18,  # beyond the platform's time_t: anymail crashes
    10**30,
    1e300,
]


@pytest.mark.parametrize("value", NUMBERS, ids=repr)
def test_numeric_timestamps_are_read_as_anymail_reads_them(value: object) -> None:
    fixture = _fixture(value)
    assert_epoch_timestamp_as_anymails(fixture)


NUMERIC_TEXTS = ["1513299569", "1513299569.5", "1461095250.123456", "0", "-1", " 1513299569 ", "1.5e9", "253402300800", "1e30"]


@pytest.mark.parametrize("text", NUMERIC_TEXTS)
def test_numeric_text_reads_as_the_number_it_spells(text: str) -> None:
    """anymail crashes on the text; ours equals anymail's reading of the JSON number."""
    crashed = run_anymail(_fixture(text))
    assert isinstance(crashed.error, TypeError), "anymail was expected to crash on numeric text"
    number = run_anymail(_fixture(json.loads(text)))
    if number.error is not None:
        with pytest.raises(normalizer.MalformedPayload, match="timestamp is out of range"):
            run_ours(_fixture(text))
        return
    [ours] = run_ours(_fixture(text))
    assert same(ours.timestamp, number.events[0].timestamp)


@pytest.mark.parametrize("value", ["", "soon", "2017-12-15T00:59:29Z", "0x5A3309F1", [1513299569], {"seconds": 1}])
def test_timestamps_that_are_no_number_are_malformed(value: object) -> None:
    assert run_anymail(_fixture(value)).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="timestamp is not a number of seconds"):
        run_ours(_fixture(value))
