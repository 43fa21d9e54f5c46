"""Signal receivers over Kafka: ``@receiver(tracking)`` functions called for every event of a group."""

from .signals import Signal, receiver, tracking

__all__ = ["Signal", "receiver", "tracking"]
