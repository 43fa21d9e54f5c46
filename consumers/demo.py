"""The demo receiver `make run` starts: one line per event."""

from espstream.schemas import TrackingEvent

from . import receiver, tracking


@receiver(tracking)
def print_event(sender: object, event: TrackingEvent, esp_name: str, **kwargs: object) -> None:
    when = event.timestamp.isoformat() if event.timestamp else "-"
    print(
        f"[{esp_name}] {event.event_type:<12} {event.recipient or '-'}  message={event.message_id or '-'}"
        f"  at={when}  tags={event.tags}  metadata={event.metadata}",
        flush=True,
    )
