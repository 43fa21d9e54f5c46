"""StatusView: the state `espstream status` keeps, read from its two compacted topics into this process."""

from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.config import CommonSettings

from .records import status_codec, suppression_codec
from .state import MessageStatus, Suppression, address_key, status_key
from .table import StateTable


class StatusView:
    """Each message's status and each suppressed address, as of the last ``refresh()``.

    Reads with assign() and commits nothing: any number of views may run anywhere.
    The last value per key counts, whether or not the broker compacted the topic.
    """

    def __init__(self, settings: CommonSettings | None = None):
        settings = settings or CommonSettings()
        registry = SchemaRegistryClient(settings.registry())
        self._statuses = StateTable(settings, status_codec(registry, settings.status_topic))
        self._suppressions = StateTable(settings, suppression_codec(registry, settings.suppressions_topic))
        self.refresh()

    def refresh(self) -> int:
        """Read what was written to both topics since the last read; how many records."""
        return self._statuses.refresh() + self._suppressions.refresh()

    def status(self, esp: str, message_id: str) -> MessageStatus | None:
        """The status of the message ``message_id`` sent through ``esp`` (its URL slug, e.g. ``postmark``)."""
        return self._statuses.states.get(status_key(esp, message_id))

    def statuses_for(self, recipient: str) -> list[MessageStatus]:
        """Every message to ``recipient`` (any case), latest event first."""
        wanted = address_key(recipient)
        found = [s for s in self._statuses.states.values() if any(address_key(r) == wanted for r in s.recipients)]
        return sorted(found, key=lambda s: (s.last_event_at is not None, s.last_event_at, s.key), reverse=True)

    def is_suppressed(self, address: str) -> Suppression | None:
        """Why mail to ``address`` (any case) should stop; None when nothing suppresses it."""
        state = self._suppressions.states.get(address_key(address))
        return state if state is not None and state.reason is not None else None

    def suppressions(self) -> list[Suppression]:
        """Every suppressed address, by address."""
        return sorted((s for s in self._suppressions.states.values() if s.reason is not None), key=lambda s: s.address)

    def close(self) -> None:
        """Nothing stays open between refreshes; for ``with``."""

    def __enter__(self) -> "StatusView":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
