"""The contract between the services: the event type, its Avro encoding, the raw record."""

from .event import EventType, Provenance, RejectReason, TrackingEvent

__all__ = ["EventType", "Provenance", "RejectReason", "TrackingEvent"]
