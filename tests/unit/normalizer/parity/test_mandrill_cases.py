"""Mandrill: many ``ts`` values through anymail and us.

anymail reads ts with ``datetime.fromtimestamp()``, a ValueError giving no
timestamp; generated here value by value.
"""

import json
import math
from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours


def _fixture(ts: Any):
    event = {"event": "send", "_id": "abcdef012345789abcdef012345789", "ts": ts, "msg": {"email": "a@example.com"}}
    form = [["mandrill_events", json.dumps([event])]]
    return from_spec("mandrill", "case", {"description": "generated", "form": form})


TS_VALUES = [1461095246, 1461095246.75, 0, -1, True, 99999999999999, -1e11, math.nan]


@pytest.mark.parametrize("value", TS_VALUES, ids=repr)
def test_ts_anymail_reads_is_read_alike(value: Any) -> None:
    result = run_anymail(_fixture(value))
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(_fixture(value))
    theirs = result.events[0].timestamp
    assert same(ours.timestamp, theirs), f"ours {ours.timestamp!r}, anymail {theirs!r}"


NUMERIC_TEXTS = ["1461095246", "1461095246.75", "1.461095246e9", "99999999999999"]


@pytest.mark.parametrize("text", NUMERIC_TEXTS)
def test_numeric_text_is_read_as_anymail_reads_the_number(text: str) -> None:
    assert run_anymail(_fixture(text)).error is not None
    as_number = run_anymail(_fixture(float(text)))
    [ours] = run_ours(_fixture(text))
    assert same(ours.timestamp, as_number.events[0].timestamp)


@pytest.mark.parametrize("value", ["soon", "", "nan", "-inf", 1e20, [1], {"ts": 1}], ids=repr)
def test_what_anymail_crashes_on_is_malformed(value: Any) -> None:
    assert run_anymail(_fixture(value)).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="ts"):
        run_ours(_fixture(value))
