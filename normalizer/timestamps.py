"""ESP timestamps -> aware datetimes, computed exactly as anymail computes them.

anymail parses ISO 8601 text with Django's ``parse_datetime`` and epoch seconds
with ``datetime.fromtimestamp(float(...), tz=utc)``. These helpers reproduce both
without Django and turn anymail's crashes into ``MalformedPayload``.
"""

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import MalformedPayload

# Django's django.utils.dateparse.datetime_re, verbatim: its fallback for what
# datetime.fromisoformat refuses (one-digit fields, "+hhmm" after a space, 7+ digits).
_DJANGO_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def iso_timestamp(value: Any, field: str) -> datetime | None:
    """An ISO 8601 timestamp as Django's ``parse_datetime`` reads it.

    None for null and for text that is not a timestamp at all (anymail's None).
    Text without a UTC offset is read as UTC: a naive datetime names no instant.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"{field} is not a timestamp string: {value!r}")
    try:
        parsed = _parse_datetime(value)
    except ValueError as error:
        raise MalformedPayload(f"{field} is not a valid timestamp: {value!r} ({error})") from None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return utc_instant(parsed, value, field)


def utc_instant(timestamp: datetime | None, value: Any, field: str) -> datetime | None:
    """``timestamp`` if its instant has a UTC date ("0001-01-01T00:00:00+14:00" has none).

    The event's timestamp is an instant in UTC (Avro timestamp-micros); anymail keeps such
    a datetime, which no consumer could compare or convert.
    """
    if timestamp is not None:
        try:
            timestamp.astimezone(timezone.utc)
        except OverflowError:
            raise MalformedPayload(f"{field} is out of range for a timestamp: {value!r}") from None
    return timestamp


def _parse_datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        match = _DJANGO_DATETIME.match(value)
        if match is None:
            return None
    parts = match.groupdict()
    if parts["microsecond"]:
        parts["microsecond"] = parts["microsecond"].ljust(6, "0")
    offset = parts.pop("tzinfo")
    tzinfo: timezone | None = None
    if offset == "Z":
        tzinfo = timezone.utc
    elif offset is not None:
        minutes = 60 * int(offset[1:3]) + (int(offset[-2:]) if len(offset) > 3 else 0)
        tzinfo = timezone(timedelta(minutes=-minutes if offset[0] == "-" else minutes))
    fields = {name: int(number) for name, number in parts.items() if number}
    return datetime(**fields, tzinfo=tzinfo)


def epoch_timestamp(value: Any, field: str) -> datetime | None:
    """Seconds since the epoch (number or numeric text) as anymail reads them: ``float()``.

    None for null.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise MalformedPayload(f"{field} is not a number of seconds since the epoch: {value!r}") from None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise MalformedPayload(f"{field} is out of range for a timestamp: {value!r}") from None


def lenient_epoch_timestamp(value: Any, field: str) -> datetime | None:
    """Epoch seconds as anymail reads them with ``fromtimestamp()`` in ``try/except ValueError``.

    None for null and where that gives None (NaN, a year out of range). Numeric
    text, on which anymail crashes, is read as the number it spells. A value too
    large for the platform, non-numeric text or any other type: MalformedPayload.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise MalformedPayload(f"{field} is not a number of seconds since the epoch: {value!r}") from None
        if not math.isfinite(number):
            raise MalformedPayload(f"{field} is not a number of seconds since the epoch: {value!r}")
        value = number
    if not isinstance(value, (int, float)):  # bool is an int here, as for fromtimestamp()
        raise MalformedPayload(f"{field} is not a number of seconds since the epoch: {value!r}")
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except ValueError:
        return None
    except (OverflowError, OSError):
        raise MalformedPayload(f"{field} is out of range for a timestamp: {value!r}") from None
