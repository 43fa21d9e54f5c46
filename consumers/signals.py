"""A ``tracking`` signal and ``@receiver``, shaped like Django's so anymail receivers paste in."""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from espstream.schemas import TrackingEvent

Receiver = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Connection:
    receiver: Receiver
    event_types: frozenset[str] | None = None
    esps: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return f"{self.receiver.__module__}.{self.receiver.__qualname__}"

    def wants(self, event: TrackingEvent) -> bool:
        if self.event_types is not None and event.event_type not in self.event_types:
            return False
        if self.esps is not None:
            slug = event.provenance.esp if event.provenance else None
            return event.esp_name in self.esps or slug in self.esps
        return True


class Signal:
    def __init__(self) -> None:
        self._connections: list[Connection] = []

    def connect(
        self,
        receiver: Receiver,
        *,
        event_types: Collection[str] | None = None,
        esps: Collection[str] | None = None,
    ) -> None:
        """Call ``receiver(sender=..., event=..., esp_name=..., **kwargs)`` for each wanted event.

        ``event_types`` and ``esps`` (anymail ESP names or URL slugs) narrow what it gets.
        Connecting the same function twice keeps one connection, as Django's signals do.
        """
        if isinstance(event_types, str) or isinstance(esps, str):
            raise TypeError("event_types and esps take collections, e.g. esps={'Postmark'}")
        self.disconnect(receiver)
        self._connections.append(
            Connection(
                receiver,
                frozenset(event_types) if event_types is not None else None,
                frozenset(esps) if esps is not None else None,
            )
        )

    def disconnect(self, receiver: Receiver) -> None:
        self._connections = [c for c in self._connections if c.receiver != receiver]

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections)

    def send(self, sender: object, event: TrackingEvent, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        """Call every wanted receiver in order; an exception propagates, as with Django's ``send``."""
        return [
            (c.receiver, c.receiver(sender=sender, event=event, esp_name=event.esp_name, **kwargs))
            for c in self._connections
            if c.wants(event)
        ]


#: Delivery and tracking events, like ``anymail.signals.tracking``.
tracking = Signal()


def receiver(
    signal: Signal | list[Signal] | tuple[Signal, ...],
    *,
    event_types: Collection[str] | None = None,
    esps: Collection[str] | None = None,
) -> Callable[[Receiver], Receiver]:
    """``@receiver(tracking)`` connects the decorated function, like Django's decorator."""
    signals = signal if isinstance(signal, (list, tuple)) else [signal]

    def decorate(function: Receiver) -> Receiver:
        for each in signals:
            each.connect(function, event_types=event_types, esps=esps)
        return function

    return decorate
