"""Mailtrap: many ``timestamp`` values through anymail and us.

anymail reads the timestamp with a bare ``datetime.fromtimestamp()``: what it
cannot read crashes it. Generated here value by value.
"""

from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours


def _fixture(timestamp: Any):
    event = {"event": "delivery", "message_id": "1df37d17", "email": "receiver@example.com", "timestamp": timestamp}
    return from_spec("mailtrap", "case", {"description": "generated", "body": {"events": [event]}})


TIMESTAMPS = [1698056785, 1698056785.5, 0, -86400, True]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=repr)
def test_timestamps_anymail_reads_are_read_alike(value: Any) -> None:
    result = run_anymail(_fixture(value))
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(_fixture(value))
    theirs = result.events[0].timestamp
    assert same(ours.timestamp, theirs), f"ours {ours.timestamp!r}, anymail {theirs!r}"


NUMERIC_TEXTS = ["1698056785", "1698056785.5", " 1698056785 ", "1.698056785e9", "-86400"]


@pytest.mark.parametrize("text", NUMERIC_TEXTS)
def test_numeric_text_is_read_as_anymail_reads_the_number(text: str) -> None:
    assert run_anymail(_fixture(text)).error is not None
    as_number = run_anymail(_fixture(float(text)))
    [ours] = run_ours(_fixture(text))
    assert same(ours.timestamp, as_number.events[0].timestamp)


# Out of range, NaN (a ValueError anymail does not catch here), not a number.
@pytest.mark.parametrize("value", [99999999999999, 1e20, float("nan"), "soon", "", "nan", [1], {"s": 1}], ids=repr)
def test_what_anymail_crashes_on_is_malformed(value: Any) -> None:
    assert run_anymail(_fixture(value)).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="timestamp"):
        run_ours(_fixture(value))
