"""Mailtrap sending webhooks, as anymail's ``MailtrapTrackingWebhookView`` reads them.

One JSON object per request, ``{"events": [...]}``, a batch of events in order.
The content type is not looked at (anymail does not either).
"""

from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest
from ..timestamps import epoch_timestamp

# Mailtrap event -> (normalized type, reject reason).
EVENT_TYPES: dict[str, tuple[str, str | None]] = {
    "delivery": (EventType.DELIVERED, None),
    "open": (EventType.OPENED, None),
    "click": (EventType.CLICKED, None),
    "bounce": (EventType.BOUNCED, RejectReason.BOUNCED),
    "soft bounce": (EventType.DEFERRED, RejectReason.OTHER),
    "spam": (EventType.COMPLAINED, RejectReason.SPAM),
    "unsubscribe": (EventType.UNSUBSCRIBED, RejectReason.UNSUBSCRIBED),
    "reject": (EventType.REJECTED, RejectReason.BLOCKED),
    "suspension": (EventType.DEFERRED, RejectReason.OTHER),
    # anymail also maps "blocked" (not a Mailtrap event) to a reason, with no known type.
    "blocked": (EventType.UNKNOWN, RejectReason.BLOCKED),
}

INBOUND_ON_TRACKING_URL = (
    "a Mailtrap inbound event was posted to the tracking webhook URL:"
    " Mailtrap's inbound webhook is set to the tracking URL instead of an inbound one"
)


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    body = request.json()
    if not isinstance(body, dict):
        raise MalformedPayload(f"a Mailtrap webhook body is a JSON object with events, not {type(body).__name__}")
    events = body.get("events")
    # A null "events" is no events, as a missing one.
    esp_events = batch_items([] if events is None else events, "events")
    # anymail refuses the batch at an inbound event even after events it could not
    # carry in our types: the misconfiguration is the reason to give.
    for esp_event in esp_events:
        if isinstance(esp_event, dict):
            _check_not_inbound(esp_event)
    if not all(isinstance(esp_event, dict) for esp_event in esp_events):
        raise MalformedPayload("Mailtrap's events are JSON objects")
    return [esp_to_event(esp_event) for esp_event in esp_events]


def _check_not_inbound(esp_event: dict[str, Any]) -> None:
    event_name = esp_event.get("event")
    if isinstance(event_name, str) and event_name.startswith("inbound"):
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    _check_not_inbound(esp_event)
    event_name = esp_event.get("event")
    event_type, reject_reason = lookup(EVENT_TYPES, event_name, (EventType.UNKNOWN, None))
    category = esp_event.get("category")
    return TrackingEvent(
        event_type=event_type,
        # Epoch seconds; numeric text and a missing or null timestamp are read too.
        timestamp=epoch_timestamp(esp_event.get("timestamp"), "timestamp"),
        event_id=optional_text(esp_event.get("event_id"), "event_id"),
        message_id=optional_text(esp_event.get("message_id"), "message_id"),
        recipient=optional_text(esp_event.get("email"), "email"),
        metadata=metadata_dict(esp_event.get("custom_variables"), "custom_variables"),
        # An empty category is no tag.
        tags=tag_list([category], "category") if category else [],
        reject_reason=reject_reason,
        mta_response=optional_text(esp_event.get("response"), "response"),
        user_agent=optional_text(esp_event.get("user_agent"), "user_agent"),
        click_url=optional_text(esp_event.get("url"), "url"),
        esp_event=esp_event,
    )
