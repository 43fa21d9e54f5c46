"""The normalized event, with django-anymail's attribute names and types."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventType:
    """anymail's normalized event types."""

    QUEUED = "queued"
    SENT = "sent"
    REJECTED = "rejected"
    FAILED = "failed"
    BOUNCED = "bounced"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    AUTORESPONDED = "autoresponded"
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBED = "subscribed"
    # An inbound message failed: Postmark reports it as a bounce on the tracking webhook.
    INBOUND_FAILED = "inbound_failed"
    UNKNOWN = "unknown"
    # A received message (schema version 2). Listed in the schema's order: a new symbol goes
    # last, so the Avro index of every earlier one stays what it was.
    INBOUND = "inbound"


class RejectReason:
    """anymail's normalized reasons for rejected, bounced and failed events."""

    INVALID = "invalid"
    BOUNCED = "bounced"
    TIMED_OUT = "timed_out"
    BLOCKED = "blocked"
    SPAM = "spam"
    UNSUBSCRIBED = "unsubscribed"
    OTHER = "other"


@dataclass(slots=True, kw_only=True)
class Provenance:
    """Where a normalized event came from."""

    esp: str
    topic: str
    partition: int
    offset: int
    index: int
    received_at: datetime | None
    request_id: str | None
    normalizer_version: str


@dataclass(slots=True, kw_only=True)
class TrackingEvent:
    """A delivery or engagement event, equal to anymail's ``AnymailTrackingEvent``.

    Departures from anymail, both from its documented types: ``tags`` is always a
    list of strings and ``metadata`` always a dict.
    """

    event_type: str
    timestamp: datetime | None = None
    event_id: str | None = None
    message_id: str | None = None
    recipient: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    reject_reason: str | None = None
    description: str | None = None
    mta_response: str | None = None
    user_agent: str | None = None
    click_url: str | None = None
    esp_event: Any = None
    esp_name: str = ""
    dedupe_id: str = ""
    provenance: Provenance | None = None
