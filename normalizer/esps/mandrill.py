"""Mandrill webhooks, as anymail's ``MandrillCombinedWebhookView`` reads them.

A form (url-encoded or multipart) whose ``mandrill_events`` field holds a JSON
array: message events (send, open, bounce...), sync events (``type``
whitelist/blacklist) or inbound messages. anymail's view serves tracking and
inbound alike and sends an inbound batch to its inbound receivers: such a batch
gives no tracking events.
"""

import json
from typing import Any

from espstream.schemas import EventType, TrackingEvent

from ..errors import MalformedPayload
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest
from ..timestamps import lenient_epoch_timestamp

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

EVENT_TYPES: dict[str, str] = {
    # Message events:
    "send": EventType.SENT,
    "deferral": EventType.DEFERRED,
    "hard_bounce": EventType.BOUNCED,
    "soft_bounce": EventType.BOUNCED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spam": EventType.COMPLAINED,
    "unsub": EventType.UNSUBSCRIBED,
    "reject": EventType.REJECTED,
    # Sync events (suppression list changes):
    "whitelist": EventType.UNKNOWN,
    "blacklist": EventType.UNKNOWN,
}

INBOUND = "inbound"


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    if request.media_type not in FORM_TYPES:
        # Django reads no form fields from any other content type: anymail finds no mandrill_events.
        raise MalformedPayload(f"Mandrill webhooks are form-encoded, not {request.content_type!r}")
    values = request.form().get("mandrill_events")
    if not values:
        raise MalformedPayload("the Mandrill webhook form has no mandrill_events field")
    # Of a repeated field, Django's request.POST[...] gives the last value.
    esp_events = batch_items(_json(values[-1]), "mandrill_events")
    if not all(isinstance(esp_event, dict) for esp_event in esp_events):
        raise MalformedPayload("mandrill_events is a JSON array of event objects")

    inbound = [_event_name(esp_event) == INBOUND for esp_event in esp_events]
    if all(inbound):
        # Inbound messages (or nothing at all): anymail's inbound signal, not tracking.
        return []
    if any(inbound):
        raise MalformedPayload("mandrill_events mixes inbound messages with tracking events")
    return [esp_to_event(esp_event) for esp_event in esp_events]


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    msg = _object(esp_event, "msg")  # message events
    reject = _object(esp_event, "reject")  # blacklist sync events
    if "email" in msg:
        recipient = msg["email"]
    else:
        recipient = reject.get("email")
    return TrackingEvent(
        event_type=lookup(EVENT_TYPES, _event_name(esp_event, None), EventType.UNKNOWN),
        timestamp=lenient_epoch_timestamp(esp_event.get("ts"), "ts"),
        event_id=None,  # Mandrill events have no id
        message_id=optional_text(esp_event.get("_id"), "_id"),
        recipient=optional_text(recipient, "msg.email/reject.email"),
        metadata=metadata_dict(msg.get("metadata"), "msg.metadata"),
        tags=tag_list(msg.get("tags"), "msg.tags"),
        # As anymail: Mandrill's bounce_description is not mapped to a reason.
        reject_reason=None,
        description=optional_text(_first_present(reject, ("detail", "reason")), "reject.detail/reason"),
        mta_response=optional_text(msg.get("diag"), "msg.diag"),
        user_agent=optional_text(esp_event.get("user_agent"), "user_agent"),
        click_url=optional_text(esp_event.get("url"), "url"),
        esp_event=esp_event,
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise MalformedPayload(f"mandrill_events is not valid JSON: {error}") from None
    except RecursionError:
        raise MalformedPayload("mandrill_events nests too deeply to parse") from None


def _event_name(esp_event: dict[str, Any], default: Any = "unknown") -> Any:
    """The value of "event" (message and inbound events) or else "type" (sync events), even if null."""
    return _first_present(esp_event, ("event", "type"), default)


def _object(esp_event: dict[str, Any], name: str) -> dict[str, Any]:
    """esp_event[name] as an object; {} where it is missing or null."""
    value = esp_event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{name} is not an object: {value!r}")
    return value


def _first_present(parent: dict[str, Any], fields: tuple[str, ...], default: Any = None) -> Any:
    """The value of the first field present, even if null (as anymail's getfirst)."""
    for field in fields:
        if field in parent:
            return parent[field]
    return default
