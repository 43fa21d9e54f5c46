"""Unisender Go webhooks, as anymail's ``UnisenderGoTrackingWebhookView`` reads them.

Two JSON payloads, both one object per request:
- the default: ``{"auth": ..., "events_by_user": [{"events": [{"event_name": ...,
  "event_data": {...}}, ...]}]}``, a batch of one user's events;
- "use single event": one flat object, the event_data fields next to
  ``event_name``, ``user_id``, ``project_id``...
Only ``transactional_email_status`` events are tracking events; the others
(e.g. ``transactional_spam_block``) give none. The content type is not looked at.
"""

from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload
from ..fields import batch_items, lookup, optional_text
from ..request import WebhookRequest

STATUS_EVENT = "transactional_email_status"

EVENT_TYPES: dict[str, str] = {
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "subscribed": EventType.SUBSCRIBED,
    "spam": EventType.COMPLAINED,
    "soft_bounced": EventType.DEFERRED,
    "hard_bounced": EventType.BOUNCED,
}

# delivery_info.delivery_status starting with "err" -> reject reason; an unlisted one is OTHER.
REJECT_REASONS: dict[str, str | None] = {
    "err_user_unknown": RejectReason.BOUNCED,
    "err_user_inactive": RejectReason.BOUNCED,
    "err_will_retry": None,  # not rejected (yet)
    "err_mailbox_discarded": RejectReason.BOUNCED,
    "err_mailbox_full": RejectReason.BOUNCED,
    "err_spam_rejected": RejectReason.SPAM,
    "err_blacklisted": RejectReason.BLOCKED,
    "err_too_large": RejectReason.BOUNCED,
    "err_unsubscribed": RejectReason.UNSUBSCRIBED,
    "err_unreachable": RejectReason.BOUNCED,
    "err_skip_letter": RejectReason.BOUNCED,
    "err_domain_inactive": RejectReason.BOUNCED,
    "err_destination_misconfigured": RejectReason.BOUNCED,
    "err_delivery_failed": RejectReason.OTHER,
    "err_spam_skipped": RejectReason.SPAM,
    "err_lost": RejectReason.OTHER,
}


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    payload = request.json()
    if not isinstance(payload, dict):
        raise MalformedPayload(f"a Unisender Go webhook body is a JSON object, not {type(payload).__name__}")
    if "events_by_user" in payload:
        esp_events = _status_events(payload["events_by_user"])
    elif "event_name" in payload:
        # "Use single event": the payload is the event data itself.
        esp_events = [payload] if payload["event_name"] == STATUS_EVENT else []
    else:
        raise MalformedPayload("a Unisender Go webhook body has events_by_user or event_name")
    return [esp_to_event(esp_event) for esp_event in esp_events]


def _status_events(events_by_user: Any) -> list[Any]:
    """The event_data of each transactional_email_status event of the one user."""
    if not (isinstance(events_by_user, list) and len(events_by_user) == 1):
        # The API documents a one-element array; anymail asserts it.
        raise MalformedPayload(f"events_by_user is not a one-element JSON array: {events_by_user!r}")
    [user] = events_by_user
    if not (isinstance(user, dict) and "events" in user):
        raise MalformedPayload(f"events_by_user[0] is not an object with events: {user!r}")
    status_events = []
    for event in batch_items(user["events"], "events_by_user[0].events"):
        if not (isinstance(event, dict) and "event_name" in event):
            raise MalformedPayload(f"a Unisender Go event is not an object with an event_name: {event!r}")
        if event["event_name"] == STATUS_EVENT:
            if "event_data" not in event:
                raise MalformedPayload(f"a {STATUS_EVENT} event has no event_data")
            status_events.append(event["event_data"])
    return status_events


def esp_to_event(event_data: Any) -> TrackingEvent:
    if not isinstance(event_data, dict):
        raise MalformedPayload(f"Unisender Go event_data is a JSON object, not {type(event_data).__name__}")

    # A missing metadata or delivery_info is an empty one; so is a null one (anymail crashes).
    metadata = dict(_object(event_data, "metadata"))
    # anymail's own message id, when it generated one, wins over Unisender Go's job_id.
    message_id = metadata.pop("anymail_id", event_data.get("job_id"))
    delivery_info = _object(event_data, "delivery_info")
    delivery_status = optional_text(delivery_info.get("delivery_status"), "delivery_info.delivery_status")

    reject_reason = None
    if delivery_status and delivery_status.startswith("err"):
        reject_reason = REJECT_REASONS.get(delivery_status, RejectReason.OTHER)

    return TrackingEvent(
        # A missing status is an unknown one (anymail crashes).
        event_type=lookup(EVENT_TYPES, event_data.get("status"), EventType.UNKNOWN),
        timestamp=_timestamp(event_data),
        # Unisender Go gives nothing to deduplicate by (its ID header changes on each retry).
        event_id=None,
        message_id=optional_text(message_id, "metadata.anymail_id/job_id"),
        # A missing email is no recipient (anymail crashes).
        recipient=optional_text(event_data.get("email"), "email"),
        metadata=metadata,
        reject_reason=reject_reason,
        # An empty delivery_status falls back to the comment too.
        description=delivery_status or optional_text(event_data.get("comment"), "comment"),
        mta_response=optional_text(delivery_info.get("destination_response"), "delivery_info.destination_response"),
        user_agent=optional_text(delivery_info.get("user_agent"), "delivery_info.user_agent"),
        click_url=optional_text(event_data.get("url"), "url"),
        esp_event=event_data,
    )


def _timestamp(event_data: dict[str, Any]) -> datetime | None:
    """event_time, ISO-like and documented as UTC: anymail sets UTC even over a stated offset."""
    value = event_data.get("event_time")
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedPayload(f"event_time is not a timestamp string: {value!r}")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    except ValueError:
        raise MalformedPayload(f"event_time is not a valid timestamp: {value!r}") from None


def _object(event_data: dict[str, Any], field: str) -> dict[str, Any]:
    value = event_data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field} is not an object: {value!r}")
    return value
