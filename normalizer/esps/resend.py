"""Resend webhooks (sent through Svix), as anymail's ``ResendTrackingWebhookView`` reads them.

One JSON object per request, ``{"type": "email.<x>", "created_at": ..., "data": {...}}``.
The Svix signature headers are checked by the gateway; ``svix-id``, unique per
event and kept across Svix's retries, is the event id. The content type is not
looked at. Resend has no inbound refusal: an ``email.received`` posted here is
an ``unknown`` event, as in anymail.
"""

import json
from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload
from ..fields import lookup, metadata_dict, optional_text, single_address, tag_list
from ..request import WebhookRequest
from ..timestamps import utc_instant

EVENT_TYPES: dict[str, str] = {
    "email.sent": EventType.SENT,
    "email.delivered": EventType.DELIVERED,
    "email.delivery_delayed": EventType.DEFERRED,
    "email.complained": EventType.COMPLAINED,
    "email.bounced": EventType.BOUNCED,
    "email.opened": EventType.OPENED,
    "email.clicked": EventType.CLICKED,
}

# Resend gives no bounce codes; its human-readable bounce message tells these apart
# (first match wins, anything else is OTHER).
BOUNCE_MESSAGE_REASONS: tuple[tuple[str, str], ...] = (
    # "Resend has suppressed sending to this address ..."
    ("suppressed sending", RejectReason.BLOCKED),
    # "The recipient's email provider sent a hard bounce message, ..."
    ("bounce message", RejectReason.BOUNCED),
)

def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    esp_event = request.json()
    if not isinstance(esp_event, dict):
        raise MalformedPayload(f"a Resend webhook body is a JSON object, not {type(esp_event).__name__}")
    return [esp_to_event(esp_event, request.headers.get("svix-id"))]


def esp_to_event(esp_event: dict[str, Any], svix_id: str | None) -> TrackingEvent:
    data = esp_event.get("data")
    if data is not None and not isinstance(data, dict):
        raise MalformedPayload(f"data is not an object: {data!r}")
    data = data or {}
    description, reject_reason = _bounce(data)
    tags, metadata = _tags_and_metadata(data)
    click = _click(data)
    return TrackingEvent(
        # Events without a type (anymail crashes) are of unknown type.
        event_type=lookup(EVENT_TYPES, esp_event.get("type"), EventType.UNKNOWN),
        timestamp=_timestamp(esp_event),
        event_id=svix_id,
        message_id=optional_text(data.get("email_id"), "data.email_id"),
        recipient=_recipient(data),
        metadata=metadata,
        tags=tags,
        reject_reason=reject_reason,
        description=description,
        user_agent=optional_text(click.get("userAgent"), "data.click.userAgent"),
        click_url=optional_text(click.get("link"), "data.click.link"),
        esp_event=esp_event,
    )


def _timestamp(esp_event: dict[str, Any]) -> datetime | None:
    """The top-level created_at: when the event happened (data.created_at is the message's)."""
    value = esp_event.get("created_at")
    if value is None:
        return None  # absent, or null (anymail crashes on null)
    if not isinstance(value, str):
        raise MalformedPayload(f"created_at is not a timestamp string: {value!r}")
    try:
        # anymail: datetime.fromisoformat with every "Z" made "+00:00"; unreadable text is no timestamp.
        timestamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A time without offset is read as UTC.
    timestamp = timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=timezone.utc)
    return utc_instant(timestamp, value, "created_at")


def _bounce(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(description, reject reason) from data.bounce.message."""
    bounce = data.get("bounce")
    if bounce is None:
        return None, None
    if not isinstance(bounce, dict):
        raise MalformedPayload(f"data.bounce is not an object: {bounce!r}")
    message = bounce.get("message")
    if message is None:
        return None, None  # anymail crashes on a null message; absent gives no reason
    if not isinstance(message, str):
        raise MalformedPayload(f"data.bounce.message is not text: {message!r}")
    for phrase, reason in BOUNCE_MESSAGE_REASONS:
        if phrase in message:
            return message, reason
    return message, RejectReason.OTHER


def _tags_and_metadata(data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """anymail's tags and metadata, sent as JSON in X-Tags and X-Metadata headers.

    The last readable header of each name wins; a value that is null or not JSON is
    skipped, as in anymail.
    """
    tags: Any = []
    metadata: Any = {}
    for name, value in _headers(data):
        if not isinstance(value, str):
            continue  # null, or no value (anymail crashes on a missing one)
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if name == "x-tags":
            tags = parsed
        else:
            metadata = parsed
    return tag_list(tags, "X-Tags header"), metadata_dict(metadata, "X-Metadata header")


def _headers(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (lower-cased name, value) of the X-Tags and X-Metadata entries of data.headers."""
    headers = data.get("headers")
    if headers is None:
        return []  # absent, or null (anymail crashes on null)
    # anymail iterates whatever it gets: an empty object or text is no headers.
    if not isinstance(headers, (list, dict, str)):
        raise MalformedPayload(f"data.headers is not a list: {headers!r}")
    found = []
    for header in headers:
        if not isinstance(header, dict):
            raise MalformedPayload(f"data.headers has an entry that is not an object: {header!r}")
        name = header.get("name")
        if name is None:
            continue  # an entry without a name is no tags or metadata (anymail crashes)
        if not isinstance(name, str):
            raise MalformedPayload(f"data.headers has a name that is not text: {name!r}")
        name = name.lower()
        if name in ("x-tags", "x-metadata"):
            found.append((name, header.get("value")))
    return found


def _recipient(data: dict[str, Any]) -> str | None:
    """The first "to" address: events of a message to several people do not say whose they are."""
    to = data.get("to")
    if not isinstance(to, list) or not to:
        return None
    return single_address(to[0])


def _click(data: dict[str, Any]) -> dict[str, Any]:
    click = data.get("click")
    if click is None:
        return {}  # absent, or null (anymail crashes on null)
    if not isinstance(click, dict):
        raise MalformedPayload(f"data.click is not an object: {click!r}")
    return click
