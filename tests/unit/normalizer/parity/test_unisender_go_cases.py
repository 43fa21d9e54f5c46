"""Unisender Go event_time values through anymail and us.

anymail reads event_time with ``datetime.fromisoformat`` and then sets UTC,
replacing any offset the text states (the same wall time, another instant).
Where fromisoformat refuses the text, anymail crashes and we raise MalformedPayload.
"""

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours

EVENT_TIMES = [
    "2015-11-30 15:09:42",
    "2015-11-30T15:09:42",
    "2015-11-30 15:09:42.5",
    "2015-11-30 15:09:42.123456",
    "2015-11-30T15:09:42Z",
    "2015-11-30T15:09:42+03:00",
    "2015-11-30T15:09:42-0800",
    "2015-11-30 15:09",
    "2015-11-30",
    "20151130T150942",
    "2015-11-30 15:09:42,123",
    "2015-11-30 24:00:00",
    "2015-11-31 15:09:42",
    "30.11.2015 15:09:42",
    "YYYY-MM-DD HH:MM:SS",
    "",
]


@pytest.mark.parametrize("value", EVENT_TIMES)
def test_event_times_are_read_as_anymail_reads_them(value: str) -> None:
    fixture = from_spec("unisender_go", "event_time", {
        "description": f"event_time {value!r}",
        "body": {"events_by_user": [{"events": [{"event_name": "transactional_email_status", "event_data": {
            "job_id": "1a3Q2V-0000OZ-S0", "email": "a@example.com", "status": "delivered", "event_time": value,
        }}]}]},
    })  # fmt: skip
    result = run_anymail(fixture)
    if result.error is not None:
        assert isinstance(result.error, ValueError), repr(result.error)
        with pytest.raises(normalizer.MalformedPayload, match="event_time is not a valid timestamp"):
            run_ours(fixture)
        return
    [ours] = run_ours(fixture)
    assert same(ours.timestamp, result.events[0].timestamp), f"ours {ours.timestamp!r}, anymail {result.events[0].timestamp!r}"
