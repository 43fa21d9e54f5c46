"""The times ``--from`` and ``--to`` take: ISO 8601, UTC unless they carry an offset."""

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
