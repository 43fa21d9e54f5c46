"""Postal webhooks, as anymail's ``PostalTrackingWebhookView`` reads them.

One JSON object per request: ``{"event": ..., "timestamp": ..., "uuid": ...,
"payload": {...}}``. The type comes from the payload's shape, not from
``event``: a delivery ``status``, a ``bounce``, or a clicked ``url``. Events
about incoming (received) messages give no events. The content type is not
looked at (anymail does not either).
"""

from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import lookup, optional_text, single_address, tag_list
from ..request import WebhookRequest

# payload.status of MessageSent, MessageDelayed, MessageDeliveryFailed, MessageHeld.
STATUS_TYPES: dict[str, str] = {
    "Sent": EventType.DELIVERED,
    "SoftFail": EventType.DEFERRED,
    "HardFail": EventType.FAILED,
    "Held": EventType.QUEUED,
}

INBOUND_ON_TRACKING_URL = (
    "a Postal inbound message was posted to the tracking webhook URL:"
    " Postal's inbound route is set to the tracking URL instead of an inbound one"
)


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    esp_event = request.json()
    # anymail's test is `"rcpt_to" in body`: a key of an object, but also an item of
    # an array or a substring of a JSON string. All of them are refused alike.
    if isinstance(esp_event, (dict, list, str)) and "rcpt_to" in esp_event:
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
    if not isinstance(esp_event, dict):
        raise MalformedPayload(f"a Postal webhook body is a JSON object, not {type(esp_event).__name__}")
    return esp_to_events(esp_event)


def esp_to_events(esp_event: dict[str, Any]) -> list[TrackingEvent]:
    timestamp = _timestamp(esp_event.get("timestamp"))
    payload = _object(esp_event.get("payload", {}), "payload")
    # Bounces name the bounced message original_message.
    message = _object(payload.get("message") or payload.get("original_message", {}), "payload.message")
    to = message.get("to")
    recipient = None if to is None else single_address(to)
    if message.get("direction") == "incoming":
        # An incoming message Postal could not forward: not mail sent through Postal.
        return []

    if "status" in payload:
        event_type = lookup(STATUS_TYPES, payload["status"], EventType.UNKNOWN)
    elif "bounce" in payload:
        event_type = EventType.BOUNCED
    elif "url" in payload:
        event_type = EventType.CLICKED
    else:
        # Also MessageLoaded (opens) and the server events (DomainDNSError, SendLimit*).
        event_type = EventType.UNKNOWN

    return [
        TrackingEvent(
            event_type=event_type,
            timestamp=timestamp,
            event_id=optional_text(esp_event.get("uuid"), "uuid"),
            # Postal's numeric message id, not the Message-ID header.
            message_id=optional_text(message.get("id"), "payload.message.id"),
            recipient=recipient,
            metadata={},  # Postal has no per-message metadata
            tags=tag_list([message.get("tag")], "payload.message.tag"),
            reject_reason=RejectReason.BOUNCED if event_type == EventType.BOUNCED else None,
            description=optional_text(payload.get("details"), "payload.details"),
            mta_response=optional_text(payload.get("output"), "payload.output"),
            user_agent=optional_text(payload.get("user_agent"), "payload.user_agent"),
            click_url=optional_text(payload.get("url"), "payload.url"),
            esp_event=esp_event,
        )
    ]


def _timestamp(value: Any) -> datetime | None:
    """Epoch seconds cut to whole seconds (anymail's ``int()``); a falsy value is no timestamp."""
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError:
        seconds = _whole_seconds_in_text(value)
    except (TypeError, OverflowError):
        raise MalformedPayload(f"timestamp is not a number of seconds since the epoch: {value!r}") from None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise MalformedPayload(f"timestamp is out of range for a timestamp: {value!r}") from None


def _whole_seconds_in_text(value: Any) -> int:
    # Decimal text ("1606753101.961181"), on which anymail's int() crashes, is cut as a number is.
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise MalformedPayload(f"timestamp is not a number of seconds since the epoch: {value!r}") from None


def _object(value: Any, field: str) -> dict[str, Any]:
    """An object; {} for null (anymail crashes on it)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field} is not an object: {value!r}")
    return value
