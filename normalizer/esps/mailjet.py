"""Mailjet event webhooks, as anymail's ``MailjetTrackingWebhookView`` reads them.

A JSON array of events when the webhook groups events, a single bare event
object when it does not. The content type is not looked at (anymail does not
either).
"""

import json
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list, utf8_text
from ..request import WebhookRequest
from ..timestamps import lenient_epoch_timestamp

EVENT_TYPES: dict[str, str] = {
    "sent": EventType.DELIVERED,  # accepted by the receiving MTA
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "bounce": EventType.BOUNCED,
    "blocked": EventType.REJECTED,
    "spam": EventType.COMPLAINED,
    "unsub": EventType.UNSUBSCRIBED,
}

# Mailjet "error" -> reject reason; any other error (even null) is OTHER.
REJECT_REASONS: dict[str, str] = {
    # error_related_to: recipient
    "user unknown": RejectReason.BOUNCED,
    "mailbox inactive": RejectReason.BOUNCED,
    "quota exceeded": RejectReason.BOUNCED,
    "blacklisted": RejectReason.BLOCKED,  # may also be an earlier unsubscribe
    "spam reporter": RejectReason.SPAM,
    # error_related_to: domain
    "invalid domain": RejectReason.BOUNCED,
    "no mail host": RejectReason.BOUNCED,
    "relay/access denied": RejectReason.BOUNCED,
    "greylisted": RejectReason.OTHER,  # and deferred unless a hard bounce, see esp_to_event
    "typofix": RejectReason.INVALID,
    # error_related_to: spam (Mailjet's own filtering)
    "sender blocked": RejectReason.BLOCKED,
    "content blocked": RejectReason.BLOCKED,
    "policy issue": RejectReason.BLOCKED,
    # error_related_to: mailjet
    "preblocked": RejectReason.BLOCKED,
    "duplicate in campaign": RejectReason.OTHER,
}


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    body = request.json()
    # Without "group events" Mailjet posts one bare event, not an array of one.
    esp_events = [body] if isinstance(body, dict) else batch_items(body, "Mailjet webhook body")
    if not all(isinstance(esp_event, dict) for esp_event in esp_events):
        raise MalformedPayload("a Mailjet webhook is an event object or a JSON array of event objects")
    return [esp_to_event(esp_event) for esp_event in esp_events]


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    event_type = lookup(EVENT_TYPES, esp_event.get("event"), EventType.UNKNOWN)
    # "A temporary error due to possible unrecognised senders. Delivery will be
    # re-attempted." As anymail, whatever the event.
    if esp_event.get("error") == "greylisted" and not esp_event.get("hard_bounce", False):
        event_type = EventType.DEFERRED

    reject_reason = None
    if "error" in esp_event:
        reject_reason = lookup(REJECT_REASONS, esp_event["error"], RejectReason.OTHER)

    # Mailjet's MessageID is a big integer; anymail's str() also makes a null one "None".
    message_id = utf8_text(str(esp_event["MessageID"]), "MessageID") if "MessageID" in esp_event else None
    tag = esp_event.get("customcampaign")
    return TrackingEvent(
        event_type=event_type,
        timestamp=lenient_epoch_timestamp(esp_event.get("time"), "time"),
        event_id=None,  # Mailjet events have no id
        message_id=message_id,
        recipient=optional_text(esp_event.get("email"), "email"),
        metadata=_metadata(esp_event),
        # An empty customcampaign ("" or 0) is no tag.
        tags=tag_list([tag], "customcampaign") if tag else [],
        reject_reason=reject_reason,
        mta_response=optional_text(esp_event.get("smtp_reply"), "smtp_reply"),
        user_agent=optional_text(esp_event.get("agent"), "agent"),
        click_url=optional_text(esp_event.get("url"), "url"),
        esp_event=esp_event,
    )


def _metadata(esp_event: dict[str, Any]) -> dict[str, Any]:
    """The JSON object in Payload (the EventPayload given at send time)."""
    payload = esp_event.get("Payload")
    if payload is None:
        return {}
    if not isinstance(payload, str):
        raise MalformedPayload(f"Payload is not text: {payload!r}")
    try:
        metadata = json.loads(payload)
    except ValueError:
        return {}  # as anymail: a payload that is not JSON ("", plain text) is no metadata
    except RecursionError:
        raise MalformedPayload("Payload nests too deeply to parse") from None
    return metadata_dict(metadata, "Payload")
