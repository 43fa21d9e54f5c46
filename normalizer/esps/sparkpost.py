"""SparkPost event webhooks, as anymail's ``SparkPostTrackingWebhookView`` reads them.

One JSON array per request (a batch), each item wrapping one event in its class:
``{"msys": {"message_event": {"type": "delivery", ...}}}`` (also track_event,
gen_event, unsubscribe_event, relay_message...). An item whose ``msys`` is empty
is SparkPost's ping and gives no event. The content type is not looked at.

Option: ``NormalizeOptions.sparkpost_track_initial_open_as_opened`` (anymail's
``SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED``), given to ``normalize()`` by its caller.
"""

from datetime import datetime, timezone
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest

# event.type -> normalized type.
EVENT_TYPES: dict[str, str] = {
    "bounce": EventType.BOUNCED,
    "delivery": EventType.DELIVERED,
    "injection": EventType.QUEUED,
    "spam_complaint": EventType.COMPLAINED,
    "out_of_band": EventType.BOUNCED,
    "policy_rejection": EventType.REJECTED,
    "delay": EventType.DEFERRED,
    "click": EventType.CLICKED,
    "open": EventType.OPENED,
    "amp_click": EventType.CLICKED,
    "amp_open": EventType.OPENED,
    "generation_failure": EventType.FAILED,
    "generation_rejection": EventType.REJECTED,
    "list_unsubscribe": EventType.UNSUBSCRIBED,
    "link_unsubscribe": EventType.UNSUBSCRIBED,
}

# Only with the initial-open setting: SparkPost also sends "open" for the same first
# open, so by default these stay unknown rather than count one open twice.
INITIAL_OPEN_EVENT_TYPES: dict[str, str] = {
    "initial_open": EventType.OPENED,
    "amp_initial_open": EventType.OPENED,
}
EVENT_TYPES_WITH_INITIAL_OPENS = {**EVENT_TYPES, **INITIAL_OPEN_EVENT_TYPES}

# event.bounce_class -> reject reason, or (reject reason, event type) where the class
# changes the type; any other class is OTHER. Classes are text ("10"), never numbers.
BOUNCE_CLASSES: dict[str, str | tuple[str, str]] = {
    "1": RejectReason.OTHER,  # undetermined
    "10": RejectReason.INVALID,  # invalid recipient
    "20": RejectReason.BOUNCED,  # soft bounce
    "21": RejectReason.BOUNCED,  # DNS failure
    "22": RejectReason.BOUNCED,  # mailbox full
    "23": RejectReason.BOUNCED,  # too large
    "24": RejectReason.TIMED_OUT,
    "25": RejectReason.BLOCKED,  # admin failure (configured policies)
    "30": RejectReason.BOUNCED,  # generic bounce: no RCPT
    "40": RejectReason.BOUNCED,  # generic bounce
    "50": RejectReason.BLOCKED,  # mail block (by the receiver)
    "51": RejectReason.SPAM,  # spam block
    "52": RejectReason.SPAM,  # spam content
    "53": RejectReason.OTHER,  # prohibited attachment
    "54": RejectReason.BLOCKED,  # relaying denied
    "60": (RejectReason.OTHER, EventType.AUTORESPONDED),  # auto-reply / vacation
    "70": RejectReason.BOUNCED,  # transient failure
    "80": (RejectReason.OTHER, EventType.SUBSCRIBED),
    "90": (RejectReason.UNSUBSCRIBED, EventType.UNSUBSCRIBED),
    "100": (RejectReason.OTHER, EventType.AUTORESPONDED),  # challenge-response
}

INBOUND_ON_TRACKING_URL = (
    "a SparkPost inbound relay_message was posted to the tracking webhook URL:"
    " SparkPost's inbound relay webhook is set to the tracking URL instead of an inbound one"
)


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    raw_events = batch_items(request.json(), "the SparkPost webhook body")
    # As anymail: every item is unwrapped before any is converted, so a broken
    # wrapper anywhere wins over an inbound relay_message anywhere.
    unwrapped = [_unwrap(raw_event) for raw_event in raw_events]
    # anymail refuses the batch at a relay_message even after events it could not
    # carry in our types: the misconfiguration is the reason to give.
    if any(event_class == "relay_message" and event is not None for event_class, event, _ in unwrapped):
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
    event_types = (
        EVENT_TYPES_WITH_INITIAL_OPENS if request.options.sparkpost_track_initial_open_as_opened else EVENT_TYPES
    )
    return [
        esp_to_event(event_class, event, raw_event, event_types)
        for event_class, event, raw_event in unwrapped
        # A ping, or a class with a null event: nothing happened.
        if event is not None
    ]


def _unwrap(raw_event: Any) -> tuple[str | None, Any, dict[str, Any]]:
    """(event class, event, raw event) of one batch item; (None, None, raw event) for a ping."""
    if not isinstance(raw_event, dict):
        raise MalformedPayload(f"a SparkPost batch item is a JSON object, not {type(raw_event).__name__}")
    msys = raw_event.get("msys")
    if not isinstance(msys, dict):
        raise MalformedPayload(f"a SparkPost batch item has an msys object: {raw_event!r}")
    if not msys:
        return None, None, raw_event
    if len(msys) > 1:
        raise MalformedPayload(f"a SparkPost batch item has several event classes: {sorted(msys)}")
    [(event_class, event)] = msys.items()
    return event_class, event, raw_event


def esp_to_event(
    event_class: str, event: Any, raw_event: dict[str, Any], event_types: dict[str, str]
) -> TrackingEvent:
    if event_class == "relay_message":
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
    if not isinstance(event, dict):
        raise MalformedPayload(f"a SparkPost {event_class} is a JSON object, not {type(event).__name__}")

    event_type = lookup(event_types, event.get("type"), EventType.UNKNOWN)
    reject_reason = None
    if "bounce_class" in event:
        # Any event with a bounce_class gets a reject reason, and some classes a new type.
        reason = lookup(BOUNCE_CLASSES, event["bounce_class"], RejectReason.OTHER)
        reject_reason, event_type = reason if isinstance(reason, tuple) else (reason, event_type)

    return TrackingEvent(
        event_type=event_type,
        timestamp=_timestamp(event),
        event_id=optional_text(event.get("event_id"), "event_id"),
        # transmission_id, not message_id: it is what anymail's SparkPost backend reports on send.
        message_id=optional_text(event.get("transmission_id"), "transmission_id"),
        # raw_rcpt_to keeps the address's case (rcpt_to is lower-cased).
        recipient=optional_text(event.get("raw_rcpt_to"), "raw_rcpt_to"),
        # Message and recipient metadata together; anymail takes any empty value as none.
        metadata=metadata_dict(event.get("rcpt_meta") or None, "rcpt_meta"),
        tags=_tags(event),
        reject_reason=reject_reason,
        mta_response=optional_text(event.get("raw_reason"), "raw_reason"),
        user_agent=optional_text(event.get("user_agent"), "user_agent"),
        click_url=optional_text(event.get("target_link_url"), "target_link_url"),
        esp_event=raw_event,
    )


def _tags(event: dict[str, Any]) -> list[str]:
    # The campaign_id is the tag (rcpt_tags are not set by sending a message); an empty one is none.
    campaign_id = event.get("campaign_id")
    return tag_list([campaign_id], "campaign_id") if campaign_id else []


def _timestamp(event: dict[str, Any]) -> datetime | None:
    """Epoch seconds as anymail reads them: ``int()`` of a number or text; what int() refuses is None."""
    value = event.get("timestamp")
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        # Null, a fraction in text, ISO text, a year out of range: anymail gives no timestamp.
        return None
    except (OverflowError, OSError):
        raise MalformedPayload(f"timestamp is out of range for a timestamp: {value!r}") from None
