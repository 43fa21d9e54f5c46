"""Brevo (formerly SendinBlue) transactional webhooks, as anymail's ``BrevoTrackingWebhookView`` reads them.

One JSON object per request, one event. A webhook created with ``batched: true``
posts a JSON array of those objects instead: anymail cannot read it, we give
one event per object, in order. The content type is not looked at (anymail
does not either).
"""

import json
import math
from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent
from espstream.schemas.esps import ESP_NAMES

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import lookup, optional_text, tag_list
from ..request import WebhookRequest

# Brevo event -> (normalized type, reject reason).
EVENT_TYPES: dict[str, tuple[str, str | None]] = {
    # "request" may come even for a message that is never sent (before "blocked").
    "request": (EventType.QUEUED, None),
    "delivered": (EventType.DELIVERED, None),
    "hard_bounce": (EventType.BOUNCED, RejectReason.BOUNCED),
    "soft_bounce": (EventType.BOUNCED, RejectReason.BOUNCED),
    "blocked": (EventType.REJECTED, RejectReason.BLOCKED),
    "spam": (EventType.COMPLAINED, RejectReason.SPAM),
    "complaint": (EventType.COMPLAINED, RejectReason.SPAM),
    "invalid_email": (EventType.BOUNCED, RejectReason.INVALID),
    "deferred": (EventType.DEFERRED, None),
    # First opens, later opens, and both through a privacy proxy (Apple Mail).
    "unique_opened": (EventType.OPENED, None),
    "opened": (EventType.OPENED, None),
    "unique_proxy_open": (EventType.OPENED, None),
    "proxy_open": (EventType.OPENED, None),
    "click": (EventType.CLICKED, None),
    "unsubscribe": (EventType.UNSUBSCRIBED, None),
    "error": (EventType.FAILED, None),
    "list_addition": (EventType.SUBSCRIBED, None),
}

INBOUND_ON_TRACKING_URL = (
    "a Brevo inbound payload (with 'items') was posted to the tracking webhook URL:"
    " Brevo's inbound webhook is set to the tracking URL instead of an inbound one"
)


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    return events_from(request, ESP_NAMES["brevo"])


def events_from(request: WebhookRequest, esp_name: str) -> list[TrackingEvent]:
    """The events of a Brevo webhook, received under ``esp_name`` (SendinBlue's URL reuses this)."""
    body = request.json()
    # anymail's test is `"items" in body`: a key of an object, but also an item of
    # an array or a substring of a JSON string. All of them are refused alike.
    if isinstance(body, (dict, list, str)) and "items" in body:
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
    if isinstance(body, dict):
        return [esp_to_event(body)]
    if isinstance(body, list):
        # A batched webhook: every item must be an event, or nothing is normalized.
        if not all(isinstance(item, dict) for item in body):
            raise MalformedPayload(f"a batched {esp_name} webhook is a JSON array of objects")
        return [esp_to_event(item) for item in body]
    raise MalformedPayload(f"a {esp_name} webhook body is a JSON object or array, not {type(body).__name__}")


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    event_type, reject_reason = lookup(EVENT_TYPES, esp_event.get("event"), (EventType.UNKNOWN, None))
    return TrackingEvent(
        event_type=event_type,
        timestamp=_timestamp(esp_event),
        # Brevo has no event id ("id" is the account's).
        event_id=None,
        message_id=optional_text(esp_event.get("message-id"), "message-id"),
        recipient=optional_text(esp_event.get("email"), "email"),
        metadata=_metadata(esp_event),
        tags=_tags(esp_event),
        reject_reason=reject_reason,
        mta_response=optional_text(esp_event.get("reason"), "reason"),
        click_url=optional_text(esp_event.get("link"), "link"),
        esp_event=esp_event,
    )


def _timestamp(esp_event: dict[str, Any]) -> datetime | None:
    """``ts_epoch``, milliseconds since the epoch: the only UTC time Brevo sends.

    ``ts``, ``ts_event`` and ``date`` follow the account's time zone and are not read.
    """
    if "ts_epoch" not in esp_event:
        return None
    value = esp_event["ts_epoch"]
    if value is None:
        return None  # null: no timestamp, as when it is absent (anymail crashes)
    if isinstance(value, str):
        # Numeric text (anymail crashes): read as the number it spells.
        try:
            value = float(value)
        except ValueError:
            raise MalformedPayload(f"ts_epoch is not a number of milliseconds: {value!r}") from None
        if not math.isfinite(value):
            raise MalformedPayload(f"ts_epoch is not a number of milliseconds: {esp_event['ts_epoch']!r}")
    elif not isinstance(value, (int, float)):  # a bool is an int, as in anymail's division
        raise MalformedPayload(f"ts_epoch is not a number of milliseconds: {value!r}")
    try:
        seconds = value / 1000.0
    except OverflowError:
        raise MalformedPayload(f"ts_epoch is out of range for a timestamp: {value!r}") from None
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except ValueError:
        # NaN, or a year beyond 1..9999: anymail gives no timestamp.
        return None
    except (OverflowError, OSError):
        raise MalformedPayload(f"ts_epoch is out of range for a timestamp: {value!r}") from None


def _tags(esp_event: dict[str, Any]) -> list[str]:
    # "tags" (the send's tags param) wins; else "tag", a single X-Mailin-Tag header
    # or the template name. With the tags param "tag" holds them JSON-encoded: unused.
    if "tags" in esp_event:
        return tag_list(esp_event["tags"], "tags")
    if "tag" in esp_event:
        tag = esp_event["tag"]
        # Brevo's own examples send "tag" as a list too; anymail nests it in
        # another list, we take its tags.
        return tag_list(tag if isinstance(tag, list) else [tag], "tag")
    return []


def _metadata(esp_event: dict[str, Any]) -> dict[str, Any]:
    """The X-Mailin-custom header when it holds a JSON object (how anymail sends metadata).

    The header is the sender's free text: anything else in it (plain text, which
    anymail crashes on, or JSON that is not an object) is no metadata. A value that
    is not text counts as absent, as in anymail.
    """
    custom = esp_event.get("X-Mailin-custom")
    if not isinstance(custom, str):
        return {}
    try:
        metadata = json.loads(custom)
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}
