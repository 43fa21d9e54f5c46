"""Mailgun tracking webhooks, as anymail's ``MailgunTrackingWebhookView`` reads them.

Two formats, one event per request:
- current webhooks: ``application/json``, ``{"signature": {...}, "event-data": {...}}``;
- legacy webhooks (before 2018-06): form fields, url-encoded or multipart, with
  the message's user-variables merged into the event's own fields.
"""

import json
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import lookup, metadata_dict, optional_text, single_address, tag_list
from ..request import WebhookRequest
from ..timestamps import epoch_timestamp

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    media_type = request.media_type
    if media_type == "application/json":
        esp_event = request.json()
        if not isinstance(esp_event, dict):
            raise MalformedPayload(f"a Mailgun webhook body is a JSON object, not {type(esp_event).__name__}")
        return [esp_to_event(esp_event)]
    if media_type in FORM_TYPES:
        return [legacy_to_event(request.form())]
    raise MalformedPayload(f"Mailgun webhooks are JSON or form-encoded, not {request.content_type!r}")


# Current (JSON) webhooks

EVENT_TYPES: dict[str, str] = {
    "accepted": EventType.QUEUED,
    "rejected": EventType.REJECTED,
    "delivered": EventType.DELIVERED,
    "failed": EventType.BOUNCED,  # DEFERRED when temporary, see esp_to_event
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "complained": EventType.COMPLAINED,
}

# event-data.reason -> reject reason; any other reason is OTHER.
REJECT_REASONS: dict[str, str] = {
    "bounce": RejectReason.BOUNCED,
    "suppress-bounce": RejectReason.BOUNCED,
    "generic": RejectReason.OTHER,
}


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    event_data = esp_event.get("event-data")
    if not isinstance(event_data, dict):
        raise MalformedPayload("a Mailgun JSON webhook has an event-data object")

    event_type = lookup(EVENT_TYPES, event_data.get("event"), EventType.UNKNOWN)
    # As anymail: a temporary severity defers whatever the event (only "failed" has one).
    if event_data.get("severity") == "temporary":
        event_type = EventType.DEFERRED

    headers = _message_headers(event_data)
    message_id = _bracketed_message_id(headers.get("message-id"))

    description = _text_in(event_data, "delivery-status", "description")
    mta_response = _text_in(event_data, "delivery-status", "message")

    reject_reason = None
    if "reason" in event_data:
        reject_reason = lookup(REJECT_REASONS, event_data["reason"], RejectReason.OTHER)

    recipient = optional_text(event_data.get("recipient"), "recipient")
    if event_type == EventType.REJECTED:
        # Rejections carry their reason and recipient elsewhere.
        description = description or _text_in(event_data, "reject", "reason")
        reject_reason = reject_reason or RejectReason.OTHER
        if not recipient and isinstance(headers.get("to"), str):
            recipient = single_address(headers["to"])

    return TrackingEvent(
        event_type=event_type,
        timestamp=epoch_timestamp(event_data.get("timestamp"), "event-data.timestamp"),
        # The signature token, unique per webhook call; event-data.id is only unique within a day.
        event_id=_text_in(esp_event, "signature", "token"),
        message_id=message_id,
        recipient=recipient,
        metadata=metadata_dict(event_data.get("user-variables"), "user-variables"),
        tags=tag_list(event_data.get("tags"), "tags"),
        reject_reason=reject_reason,
        description=description,
        mta_response=mta_response,
        user_agent=_text_in(event_data, "client-info", "user-agent"),
        click_url=optional_text(event_data.get("url"), "url"),
        esp_event=esp_event,
    )


def _text_in(parent: dict[str, Any], name: str, field: str) -> str | None:
    """Text at parent[name][field]; None where name is missing or not an object."""
    child = parent.get(name)
    return optional_text(child.get(field), f"{name}.{field}") if isinstance(child, dict) else None


def _bracketed_message_id(value: Any) -> str | None:
    """The Message-ID header in angle brackets, as anymail adds them.

    anymail tests the raw value: a falsy one (0, "") is kept as it is, unbracketed.
    """
    message_id = optional_text(value, "message.headers.message-id")
    if value and message_id is not None and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    return message_id


def _message_headers(event_data: dict[str, Any]) -> dict[str, Any]:
    message = event_data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    return headers if isinstance(headers, dict) else {}


# Legacy (form) webhooks. Fields are {name: [values]}; user-variables that share a
# name with an event field add a value, so the event's own value is the first one
# (the last one for signature, timestamp and token).

LEGACY_EVENT_TYPES: dict[str, str] = {
    "delivered": EventType.DELIVERED,
    "dropped": EventType.REJECTED,
    "bounced": EventType.BOUNCED,
    "complained": EventType.COMPLAINED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
}

# SMTP status -> reject reason where it is not BOUNCED (400-599) or OTHER.
LEGACY_REJECT_REASONS: dict[int, str] = {
    499: RejectReason.TIMED_OUT,  # unable to connect to the MX
    605: RejectReason.BOUNCED,  # Mailgun: previously bounced
    607: RejectReason.SPAM,  # Mailgun: previous spam complaint
}

_COMMON_LEGACY_FIELDS = frozenset({
    "event", "recipient", "domain", "ip", "country", "region", "city", "user-agent",
    "device-type", "client-type", "client-name", "client-os", "campaign-id",
    "campaign-name", "tag", "mailing-list", "timestamp", "token", "signature",
    # Undocumented, seen in real events:
    "body-plain", "h", "message-id",
})  # fmt: skip

# Events without message-headers: their user-variables are the fields not listed here.
KNOWN_LEGACY_FIELDS: dict[str, frozenset[str]] = {
    "clicked": _COMMON_LEGACY_FIELDS | {"url"},
    "opened": _COMMON_LEGACY_FIELDS,
    "unsubscribed": _COMMON_LEGACY_FIELDS,
}

# Fields where Mailgun puts its own value after a user-variable of the same name.
_SIGNATURE_FIELDS = frozenset({"signature", "timestamp", "token"})


def legacy_to_event(fields: dict[str, list[str]]) -> TrackingEvent:
    if "event" not in fields and "sender" in fields:
        raise MisconfiguredWebhook(
            "a Mailgun inbound email was posted to the tracking webhook URL:"
            " a Mailgun receiving route forwards to the tracking URL instead of an inbound one"
        )
    if not fields:
        raise MalformedPayload("the legacy Mailgun webhook form has no fields")

    event_name = _first(fields, "event") or ""
    message_id = _first(fields, "Message-Id") or _first(fields, "message-id")
    if message_id and not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    return TrackingEvent(
        event_type=LEGACY_EVENT_TYPES.get(event_name, EventType.UNKNOWN),
        timestamp=epoch_timestamp(_last(fields, "timestamp"), "timestamp"),
        event_id=_last(fields, "token"),
        message_id=message_id,
        recipient=_first(fields, "recipient"),
        metadata=_legacy_metadata(fields, event_name),
        # Delivered events carry X-Mailgun-Tag instead of tag.
        tags=list(fields.get("tag") or fields.get("X-Mailgun-Tag") or ()),
        reject_reason=_legacy_reject_reason(_first(fields, "code")),
        description=_first(fields, "description"),
        mta_response=_first(fields, "error") or _first(fields, "notification"),
        user_agent=_first(fields, "user-agent"),
        click_url=_first(fields, "url"),
        esp_event=fields,
    )


def _legacy_reject_reason(code: str | None) -> str | None:
    # As anymail, also for delivered events: code 250 gives OTHER.
    if code is None:
        return None
    try:
        status = int(code)
    except ValueError:
        # An RFC 3463 enhanced status code, class.subject.detail.
        return RejectReason.BOUNCED if code.split(".")[0] in ("4", "5") else RejectReason.OTHER
    default = RejectReason.BOUNCED if 400 <= status < 600 else RejectReason.OTHER
    return LEGACY_REJECT_REASONS.get(status, default)


def _legacy_metadata(fields: dict[str, list[str]], event_name: str) -> dict[str, Any]:
    if "message-headers" in fields:
        # The X-Mailgun-Variables headers hold the user-variables unmixed.
        return _variables_from_headers(fields["message-headers"][-1])
    known = KNOWN_LEGACY_FIELDS.get(event_name)
    if known is None:
        return {}
    metadata = {}
    for name, values in fields.items():
        if name not in known:
            metadata[name] = values[-1]
        elif name == "tag" or len(values) == 1:
            # A user-variable named "tag" cannot be told from a tag.
            continue
        else:
            metadata[name] = values[0] if name in _SIGNATURE_FIELDS else values[-1]
    return metadata


def _variables_from_headers(text: str) -> dict[str, Any]:
    """The X-Mailgun-Variables of message-headers, a JSON list of [name, value], merged."""
    try:
        headers = json.loads(text)
    except ValueError:
        raise MalformedPayload("message-headers is not JSON") from None
    if isinstance(headers, (dict, str)):
        # anymail iterates what it finds: an object's keys, a text's characters ({} and "" are no headers).
        headers = list(headers)
    if not isinstance(headers, list):
        raise MalformedPayload("message-headers is not a JSON list of [name, value]")
    merged: dict[str, Any] | None = None
    for header in headers:
        # anymail unpacks each entry into name and value: anything of two items unpacks.
        if not (isinstance(header, (list, str, dict)) and len(header) == 2):
            raise MalformedPayload(f"message-headers has an entry that is not [name, value]: {header!r}")
        name, value = header
        if name != "X-Mailgun-Variables":
            continue
        try:
            variables = json.loads(value)
        except (TypeError, ValueError):
            raise MalformedPayload(f"an X-Mailgun-Variables header is not JSON: {value!r}") from None
        if variables is None:
            merged = None  # anymail's merge: a null drops what came before
        elif not isinstance(variables, dict):
            raise MalformedPayload(f"an X-Mailgun-Variables header is not a JSON object: {value!r}")
        elif merged is None:
            merged = dict(variables)
        else:
            merged.update(variables)
    return merged or {}


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def _last(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[-1] if values else None
