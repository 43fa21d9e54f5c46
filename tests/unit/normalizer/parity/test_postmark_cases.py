"""Postmark cases generated in code: many timestamp values through anymail and us.

Timestamp parsing is what anymail delegates to Django; a fixture file per value would be noise.
"""

from datetime import timezone

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours

POSTMARK_TIMESTAMPS = [
    "2014-08-01T13:28:10.2735393-04:00",
    "2014-08-01T13:28:10Z",
    "2014-08-01T13:28:10+00:00",
    "2014-08-01T13:28:10.5Z",
    "2014-8-1T13:28:10.5Z",  # Django's fallback pattern: one-digit fields, fraction padded
    "2014-08-01 13:28Z",
    "2014-08-01T13:28:10,123+05:30",
    "2014-08-01T13:28:10 +05",
    "2014-08-01T13:28:10 -0730",
    "2014-08-01T13:28:10.1234567890123Z",
    "20140801T132810Z",
    "2014-W31-5T13:28:10Z",
    "2014-08-01T13:28:10.123456\n",
    "٢٠١٤-٠٨-٠١T13:28:10Z",  # Arabic-Indic digits: Django's \d and int() accept them
    "2014-08-01",  # a date alone: a naive midnight for anymail
    "2014-08-01T13:28:10",
    "1461261330",
    "not a date",
    "",
    "2014-08-01T25:00:00Z",
    "2014-02-30T10:00:00Z",
    "2014-08-01T13:28:10 +24:00",
]


@pytest.mark.parametrize("value", POSTMARK_TIMESTAMPS)
def test_postmark_timestamps_are_read_as_anymail_reads_them(value: str) -> None:
    fixture = from_spec("postmark", "timestamp", {
        "description": f"DeliveredAt {value!r}",
        "body": {"RecordType": "Delivery", "MessageID": "m-1", "Recipient": "a@example.com", "DeliveredAt": value},
    })  # fmt: skip
    result = run_anymail(fixture)
    if result.error is not None:
        assert isinstance(result.error, ValueError), repr(result.error)
        with pytest.raises(normalizer.MalformedPayload, match="DeliveredAt is not a valid timestamp"):
            run_ours(fixture)
        return
    theirs = result.events[0].timestamp
    # Departure: a time without offset is read as UTC.
    expected = theirs.replace(tzinfo=timezone.utc) if theirs is not None and theirs.tzinfo is None else theirs
    [ours] = run_ours(fixture)
    assert same(ours.timestamp, expected), f"ours {ours.timestamp!r}, anymail {theirs!r}"
