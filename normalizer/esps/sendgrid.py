"""SendGrid Event Webhook, as anymail's ``SendGridTrackingWebhookView`` reads it.

One JSON array of event objects per request (a batch); the content type is not
looked at (anymail does not either). SendGrid merges the message's custom args
(anymail's metadata) into each event object, so metadata is every key that is
not one of SendGrid's own.
"""

from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest

EVENT_TYPES: dict[str, str] = {
    "bounce": EventType.BOUNCED,
    "deferred": EventType.DEFERRED,
    "delivered": EventType.DELIVERED,
    "dropped": EventType.REJECTED,
    "processed": EventType.QUEUED,
    "click": EventType.CLICKED,
    "open": EventType.OPENED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
    "group_resubscribe": EventType.SUBSCRIBED,
}

# A dropped event's type (else reason), lower-cased -> reject reason; any other is OTHER.
REJECT_REASONS: dict[str, str] = {
    "invalid": RejectReason.INVALID,
    "unsubscribed address": RejectReason.UNSUBSCRIBED,
    "bounce": RejectReason.BOUNCED,
    "bounced address": RejectReason.BOUNCED,
    "blocked": RejectReason.BLOCKED,
    "expired": RejectReason.TIMED_OUT,
}

# SendGrid's own event keys (anymail's list, including its own anymail_id):
# every other key of an event is a custom arg, i.e. metadata.
SENDGRID_EVENT_KEYS: set[str] = {
    "anymail_id",
    "asm_group_id",
    "attempt",
    "category",
    "cert_err",
    "email",
    "event",
    "ip",
    "marketing_campaign_id",
    "marketing_campaign_name",
    "newsletter",
    "nlvx_campaign_id",
    "nlvx_campaign_split_id",
    "nlvx_user_id",
    "pool",
    "post_type",
    "reason",
    "response",
    "send_at",
    "sg_event_id",
    "sg_message_id",
    "smtp-id",
    "status",
    "timestamp",
    "tls",
    "type",
    "url",
    "url_offset",
    "useragent",
}

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    try:
        body = request.json()
    except MalformedPayload:
        if request.media_type in FORM_TYPES:
            # anymail crashes on it as on any body that is not JSON; say what it probably is.
            raise MalformedPayload(
                "a SendGrid event webhook body is a JSON array, not a form:"
                " is SendGrid's Inbound Parse webhook set to the tracking URL?"
            ) from None
        raise
    esp_events = batch_items(body, "the SendGrid webhook body")
    # Every event is checked before any is returned: a batch is normalized whole or not at all.
    return [esp_to_event(esp_event) for esp_event in esp_events]


def esp_to_event(esp_event: Any) -> TrackingEvent:
    if not isinstance(esp_event, dict):
        raise MalformedPayload(f"a SendGrid event is a JSON object, not {type(esp_event).__name__}")
    event_name = esp_event.get("event")
    event_type = lookup(EVENT_TYPES, event_name, EventType.UNKNOWN)

    if event_name == "dropped":
        # Dropped by SendGrid before any MTA saw it: no MTA response, a reject reason instead.
        mta_response = None
        reject_reason = lookup(REJECT_REASONS, _drop_cause(esp_event).lower(), RejectReason.OTHER)
    else:
        # The MTA's answer: "response" for delivered and deferred, "reason" for bounces.
        mta_response = optional_text(_get_either(esp_event, "response", "reason"), "response/reason")
        reject_reason = None

    return TrackingEvent(
        event_type=event_type,
        timestamp=_timestamp(esp_event),
        event_id=optional_text(esp_event.get("sg_event_id"), "sg_event_id"),
        # anymail's own id when it sent the message, else smtp-id (never sg_message_id).
        message_id=optional_text(_get_either(esp_event, "anymail_id", "smtp-id"), "anymail_id/smtp-id"),
        recipient=optional_text(esp_event.get("email"), "email"),
        metadata=_custom_args(esp_event),
        tags=tag_list(esp_event.get("category"), "category"),
        reject_reason=reject_reason,
        mta_response=mta_response,
        user_agent=optional_text(esp_event.get("useragent"), "useragent"),
        click_url=optional_text(esp_event.get("url"), "url"),
        esp_event=esp_event,
    )


def _custom_args(esp_event: dict[str, Any]) -> dict[str, Any]:
    # anymail's set difference orders the keys by string hash, which changes from one
    # process to the next; the same keys in the order SendGrid sent them are stable.
    custom_args = {key: value for key, value in esp_event.items() if key not in SENDGRID_EVENT_KEYS}
    return metadata_dict(custom_args, "custom args")


def _drop_cause(esp_event: dict[str, Any]) -> str:
    """A dropped event's cause: "type" if given, else "reason", else ""; a null one counts as absent."""
    for field in ("type", "reason"):
        cause = optional_text(esp_event.get(field), field)
        if cause is not None:
            return cause
    return ""


def _timestamp(esp_event: dict[str, Any]) -> datetime | None:
    value = esp_event.get("timestamp")
    if value is None:
        return None  # absent (as anymail) or null (anymail crashes)
    if isinstance(value, str):
        # anymail crashes on numeric text; it means the number it spells.
        try:
            value = float(value)
        except ValueError:
            raise MalformedPayload(f"timestamp is not a number of seconds since the epoch: {value!r}") from None
    elif not isinstance(value, (int, float)):
        raise MalformedPayload(f"timestamp is not a number of seconds since the epoch: {value!r}")
    try:
        # As anymail, also for a boolean (true is one second after the epoch).
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except ValueError:
        return None  # anymail's choice: a year out of range or NaN gives no timestamp
    except (OverflowError, OSError):
        raise MalformedPayload(f"timestamp is out of range: {value!r}") from None


def _get_either(esp_event: dict[str, Any], field: str, fallback: str) -> Any:
    """esp_event[field] if present (even if null), else esp_event[fallback], as anymail's nested get."""
    return esp_event[field] if field in esp_event else esp_event.get(fallback)
