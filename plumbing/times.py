"""Times as commands take them (``--from``, ``--to``: ISO 8601, UTC unless they carry an offset) and print them."""

from datetime import UTC, datetime


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date and time (``2026-11-23``, ``2026-11-23T10:00:00+01:00``) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-23 or 2026-11-23T10:00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch: Kafka's record time."""
    return int(moment.timestamp() * 1000)


def format_time(moment: datetime | int | str) -> str:
    """How every command prints a time: ISO 8601 in UTC, to the millisecond, with its offset (as the logs do).

    ``moment`` is a datetime (naive is taken as UTC), Kafka's epoch milliseconds, or
    ISO 8601 text such as a header's; text that is no time is returned as it is.
    """
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment / 1000, UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")
