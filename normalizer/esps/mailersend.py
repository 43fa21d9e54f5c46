"""MailerSend activity webhooks, as anymail's ``MailerSendTrackingWebhookView`` reads them.

One JSON object per request, ``{"type": "activity.<x>", "data": {activity}}``;
the activity's own ``data.type`` gives the event type, the top-level ``type`` is
only looked at to refuse inbound messages. The content type is not looked at.
"""

from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import lookup, optional_text, tag_list
from ..request import WebhookRequest
from ..timestamps import iso_timestamp

# data.type -> normalized type. Both bounce kinds are "bounced" (no deferred).
EVENT_TYPES: dict[str, str] = {
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "soft_bounced": EventType.BOUNCED,
    "hard_bounced": EventType.BOUNCED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "spam_complaint": EventType.COMPLAINED,
}

# data.morph.object (the kind of extra record) -> reject reason. data.email.status
# is mostly an undocumented "rejected" and says less.
MORPH_REJECT_REASONS: dict[str, str] = {
    "recipient_bounce": RejectReason.BOUNCED,
    "spam_complaint": RejectReason.SPAM,
    "recipient_unsubscribe": RejectReason.UNSUBSCRIBED,
}


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    esp_event = request.json()
    if not isinstance(esp_event, dict):
        raise MalformedPayload(f"a MailerSend webhook body is a JSON object, not {type(esp_event).__name__}")
    if esp_event.get("type") == "inbound.message":
        raise MisconfiguredWebhook(
            "a MailerSend inbound message was posted to the tracking webhook URL:"
            " a MailerSend inbound route forwards to the tracking URL instead of an inbound one"
        )
    return [esp_to_event(esp_event)]


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    activity = _object(esp_event, "data", "data")
    email = _object(activity, "email", "data.email")
    message = _object(email, "message", "data.email.message")
    recipient = _object(email, "recipient", "data.email.recipient")

    # Activities without a data.type (anymail crashes) are of unknown type.
    event_type = lookup(EVENT_TYPES, activity.get("type"), EventType.UNKNOWN)
    reject_reason = description = click_url = None
    morph = activity.get("morph")
    # Event-specific details, in a "morph" record that names its kind in "object";
    # null (sent, delivered) or without "object": no details.
    if isinstance(morph, dict) and "object" in morph:
        reject_reason = lookup(MORPH_REJECT_REASONS, morph["object"], None)
        # "or": an empty readable_reason falls back to reason, as in anymail.
        description = optional_text(morph.get("readable_reason") or morph.get("reason"), "data.morph.reason")
        # Click records carry the url; anymail reads it from any record.
        click_url = optional_text(morph.get("url"), "data.morph.url")

    return TrackingEvent(
        event_type=event_type,
        timestamp=iso_timestamp(activity.get("created_at"), "data.created_at"),
        event_id=optional_text(activity.get("id"), "data.id"),
        # The id the send API returned (X-Message-Id), the same for all its recipients.
        message_id=optional_text(message.get("id"), "data.email.message.id"),
        recipient=optional_text(recipient.get("email"), "data.email.recipient.email"),
        tags=tag_list(email.get("tags"), "data.email.tags"),
        reject_reason=reject_reason,
        description=description,
        click_url=click_url,
        esp_event=esp_event,
    )


def _object(parent: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    """parent[name] as an object: absent or null is empty (anymail crashes on null)."""
    child = parent.get(name)
    if child is None:
        return {}
    if not isinstance(child, dict):
        raise MalformedPayload(f"{path} is not an object: {child!r}")
    return child
