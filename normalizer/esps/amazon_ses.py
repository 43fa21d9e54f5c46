"""Amazon SES tracking webhooks, as anymail's ``AmazonSESTrackingWebhookView`` reads them.

SES publishes to an Amazon SNS topic, and SNS posts each message to the webhook
as a JSON envelope (sent as ``text/plain``). Its ``Type`` is one of:
- ``Notification``: ``Message`` is a JSON string holding one SES event, either
  from configuration-set event publishing (``eventType``) or a legacy identity
  notification (``notificationType``); it gives one tracking event per
  recipient. The "Successfully validated SNS topic" notice SES sends after a
  subscription is set up gives none.
- ``SubscriptionConfirmation``, ``UnsubscribeConfirmation``: no events.
  Confirming a subscription is the gateway's job, not the normalizer's.
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent
from espstream.schemas.webhook_body import MalformedBody, charset

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import batch_items, lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest
from ..timestamps import iso_timestamp

# SNS message types; the confirmations carry no SES event.
NOTIFICATION = "Notification"
CONFIRMATIONS = ("SubscriptionConfirmation", "UnsubscribeConfirmation")

# The Message of the Notification SES sends once it has validated a new SNS destination.
VALIDATED_NOTICE = "Successfully validated SNS topic for Amazon SES event publishing."

# SES eventType (or legacy notificationType) -> normalized type. Any other type
# (DeliveryDelay, Subscription, AmazonSnsSubscriptionSucceeded...) is unknown.
EVENT_TYPES: dict[str, str] = {
    "Bounce": EventType.BOUNCED,
    "Complaint": EventType.COMPLAINED,
    "Delivery": EventType.DELIVERED,
    "Send": EventType.SENT,
    "Reject": EventType.REJECTED,
    "Open": EventType.OPENED,
    "Click": EventType.CLICKED,
    "Rendering Failure": EventType.FAILED,
}

# As anymail: every bounce is "bounced", also a Transient one.
REJECT_REASONS: dict[str, str] = {
    "Bounce": RejectReason.BOUNCED,
    "Complaint": RejectReason.SPAM,
    "Reject": RejectReason.BLOCKED,
}

# The headers SES copies from the sent message (mail.headers) that anymail's SES
# backend writes: one X-Tag per tag, X-Metadata as JSON. SES's own message tags
# (mail.tags) are not read, as in anymail.
TAG_HEADER = "x-tag"
METADATA_HEADER = "x-metadata"

# The SNS request headers anymail checks against the body.
HEADER_FIELDS = (("x-amz-sns-message-type", "Type"), ("x-amz-sns-message-id", "MessageId"))


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    sns_message = _sns_message(request)
    sns_type = _sns_type(sns_message)
    _check_sns_headers(request, sns_message)
    if sns_type == NOTIFICATION:
        ses_event = _ses_event(sns_message)
        return [] if ses_event is None else esp_to_events(ses_event, sns_message)
    return []  # a confirmation


def _sns_type(sns_message: dict[str, Any]) -> str:
    """The SNS message Type; any other than SNS's three is refused, as anymail's request validation does."""
    if "Type" not in sns_message:
        raise MalformedPayload(
            "not an Amazon SNS message (no Type): the SNS subscription must not use raw message delivery"
        )
    sns_type = sns_message["Type"]
    if sns_type != NOTIFICATION and sns_type not in CONFIRMATIONS:
        raise MalformedPayload(f"unknown Amazon SNS message Type {sns_type!r}")
    return sns_type


def _sns_message(request: WebhookRequest) -> dict[str, Any]:
    """The SNS envelope: the body decoded in the request's charset (as Django does), then JSON."""
    try:
        encoding = charset(request.content_type) or "utf-8"
    except MalformedBody as error:
        raise MalformedPayload(str(error)) from None
    try:
        sns_message = json.loads(request.body.decode(encoding))
    # LookupError: a charset Python knows that is no text encoding (rot13, base64), where anymail crashes.
    except (ValueError, LookupError) as error:
        raise MalformedPayload(f"the Amazon SNS message is not valid JSON: {error}") from None
    if not isinstance(sns_message, dict):
        raise MalformedPayload(f"an Amazon SNS message is a JSON object, not {type(sns_message).__name__}")
    return sns_message


def _check_sns_headers(request: WebhookRequest, sns_message: dict[str, Any]) -> None:
    """SNS names the message type and id in headers too; a request where they disagree is not from SNS.

    anymail also refuses requests without these headers. Here a missing header
    is accepted: whether a request came from SNS is the gateway's check, and a
    record replayed or normalized directly may not carry them.
    """
    for header, field in HEADER_FIELDS:
        if header in request.headers and request.headers[header] != sns_message.get(field):
            raise MalformedPayload(
                f"the SNS header {header}: {request.headers[header]!r} does not match"
                f" the message's {field} {sns_message.get(field)!r}"
            )


def _ses_event(sns_message: dict[str, Any]) -> dict[str, Any] | None:
    """The SES event in a Notification's Message; None for SES's validation notice."""
    message = sns_message.get("Message")
    if message == VALIDATED_NOTICE:
        return None
    if not isinstance(message, str):
        raise MalformedPayload(f"the SNS Notification's Message is not a JSON string: {message!r}")
    try:
        ses_event = json.loads(message)
    except ValueError:
        raise MalformedPayload(f"the SNS Notification's Message is not JSON: {message!r}") from None
    if not isinstance(ses_event, dict):
        raise MalformedPayload(f"the SNS Notification's Message is not a JSON object: {message!r}")
    return ses_event


def esp_to_events(ses_event: dict[str, Any], sns_message: dict[str, Any]) -> list[TrackingEvent]:
    """One tracking event per recipient of the SES event."""
    ses_type = _ses_event_type(ses_event)
    if ses_type == "Received":
        raise MisconfiguredWebhook(
            "an Amazon SES inbound (receipt rule) notification was posted to the tracking webhook URL:"
            f" the SNS topic {sns_message.get('TopicArn')!r} should post to an inbound URL"
        )
    try:
        return _events(ses_type, ses_event, sns_message)
    except MalformedPayload:
        if _without_recipients(ses_type, ses_event):
            return []  # anymail makes no event to put the odd value in
        raise


def _events(ses_type: Any, ses_event: dict[str, Any], sns_message: dict[str, Any]) -> list[TrackingEvent]:
    common: dict[str, Any] = {
        # The SNS notification's time and id: SES events have no id of their own.
        "timestamp": _timestamp(sns_message.get("Timestamp")),
        "event_id": optional_text(sns_message.get("MessageId"), "MessageId"),
        "esp_event": ses_event,
    }
    mail = _object(ses_event, "mail")
    common["message_id"] = optional_text(mail.get("messageId"), "mail.messageId")
    common["tags"], common["metadata"] = _tags_and_metadata(mail)
    common["event_type"] = lookup(EVENT_TYPES, ses_type, EventType.UNKNOWN)
    common["reject_reason"] = lookup(REJECT_REASONS, ses_type, None)
    details, recipients = _details(ses_type, ses_event, mail)
    return [TrackingEvent(**common, **details, **recipient) for recipient in recipients]


# Where each type lists its recipients; any other type is reported for mail.destination.
RECIPIENT_LISTS: dict[str, tuple[str, str]] = {
    "Bounce": ("bounce", "bouncedRecipients"),
    "Complaint": ("complaint", "complainedRecipients"),
    "Delivery": ("delivery", "recipients"),
}


def _without_recipients(ses_type: Any, ses_event: dict[str, Any]) -> bool:
    """Whether the SES event names nobody: an empty list (or empty object or text), or no mail.destination."""
    parent_field, field = lookup(RECIPIENT_LISTS, ses_type, ("mail", "destination"))
    parent = ses_event.get(parent_field)
    value = parent.get(field) if isinstance(parent, dict) else None
    if value is None:
        return parent_field == "mail" and (parent is None or isinstance(parent, dict))
    return value in ([], {}, "")


def _ses_event_type(ses_event: dict[str, Any]) -> Any:
    # anymail takes eventType if present, even null (and then crashes); a null one is an absent one here.
    for field in ("eventType", "notificationType"):
        if ses_event.get(field) is not None:
            return ses_event[field]
    return "<<type missing>>"


# Each type's own fields, and the fields of each recipient's event. Bounces,
# complaints and deliveries name their recipients; every other type is reported
# for all of mail.destination (SES does not tell who opened or clicked).
Details = tuple[dict[str, Any], list[dict[str, Any]]]


def _details(ses_type: Any, ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    handler = lookup(DETAILS, ses_type, None)
    if handler is None:
        return {"description": "Unknown SES eventType '%s'" % (ses_type,)}, _destination(mail)
    return handler(ses_event, mail)


def _bounce(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    bounce = _object(ses_event, "bounce")
    field = "bounce.bouncedRecipients"
    recipients = [
        {
            "recipient": optional_text(_required(item, "emailAddress", field), f"{field}.emailAddress"),
            "mta_response": optional_text(item.get("diagnosticCode"), f"{field}.diagnosticCode"),
        }
        for item in _objects(bounce.get("bouncedRecipients"), field)
    ]
    return {"description": _bounce_description(bounce)}, recipients


def _complaint(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    complaint = _object(ses_event, "complaint")
    field = "complaint.complainedRecipients"
    recipients = [
        {"recipient": optional_text(_required(item, "emailAddress", field), f"{field}.emailAddress")}
        for item in _objects(complaint.get("complainedRecipients"), field)
    ]
    details = {
        "description": optional_text(complaint.get("complaintFeedbackType"), "complaint.complaintFeedbackType"),
        "user_agent": optional_text(complaint.get("userAgent"), "complaint.userAgent"),
    }
    return details, recipients


def _delivery(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    delivery = _object(ses_event, "delivery")
    addresses = _list(delivery.get("recipients"), "delivery.recipients")
    recipients = [{"recipient": optional_text(address, "delivery.recipients")} for address in addresses]
    return {"mta_response": optional_text(delivery.get("smtpResponse"), "delivery.smtpResponse")}, recipients


def _send(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    return {}, _destination(mail)


def _reject(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    # anymail crashes without a reason; the rejection itself is plain.
    reason = _object(ses_event, "reject").get("reason")
    return {"description": optional_text(reason, "reject.reason")}, _destination(mail)


def _open(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    user_agent = _object(ses_event, "open").get("userAgent")
    return {"user_agent": optional_text(user_agent, "open.userAgent")}, _destination(mail)


def _click(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    click = _object(ses_event, "click")
    details = {
        "user_agent": optional_text(click.get("userAgent"), "click.userAgent"),
        "click_url": optional_text(click.get("link"), "click.link"),
    }
    return details, _destination(mail)


def _rendering_failure(ses_event: dict[str, Any], mail: dict[str, Any]) -> Details:
    # Its object is "failure", not named after the type.
    error_message = _object(ses_event, "failure").get("errorMessage")
    return {"description": optional_text(error_message, "failure.errorMessage")}, _destination(mail)


DETAILS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Details]] = {
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Delivery": _delivery,
    "Send": _send,
    "Reject": _reject,
    "Open": _open,
    "Click": _click,
    "Rendering Failure": _rendering_failure,
}


def _destination(mail: dict[str, Any]) -> list[dict[str, Any]]:
    addresses = _list(mail.get("destination"), "mail.destination", missing_ok=True)
    return [{"recipient": optional_text(address, "mail.destination")} for address in addresses]


def _bounce_description(bounce: dict[str, Any]) -> str | None:
    """"bounceType: bounceSubType", each formatted as anymail's str.format does (null -> "None")."""
    if "bounceType" not in bounce or "bounceSubType" not in bounce:
        return None  # anymail crashes; a bounce without its kind is still a bounce
    return f"{bounce['bounceType']}: {bounce['bounceSubType']}"


def _tags_and_metadata(mail: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Tags from the X-Tag headers; metadata from the last X-Metadata header that is JSON."""
    headers = _list(mail.get("headers"), "mail.headers", missing_ok=True)
    tags: list[Any] = []
    metadata: Any = {}
    for header in headers:
        if not isinstance(header, dict):
            raise MalformedPayload(f"a mail.headers entry is not an object: {header!r}")
        name = header.get("name")
        if name is None:
            continue  # anymail crashes; a header without a name is neither a tag nor metadata
        if not isinstance(name, str):
            raise MalformedPayload(f"a mail.headers name is not text: {name!r}")
        name = name.lower()
        if name == TAG_HEADER and "value" in header:
            tags.append(header["value"])
        elif name == METADATA_HEADER:
            try:
                metadata = json.loads(header["value"])
            except (ValueError, TypeError, KeyError):
                pass  # as anymail: an X-Metadata that is not JSON text is ignored
    return tag_list(tags, "X-Tag header"), metadata_dict(metadata, "X-Metadata header")


def _timestamp(value: Any) -> datetime | None:
    """The SNS Timestamp as anymail reads it: text that is not a valid date gives None."""
    if not isinstance(value, str):
        # A null is no timestamp (anymail crashes); anything else is not SNS's ISO 8601 text.
        return iso_timestamp(value, "Timestamp")
    try:
        return iso_timestamp(value, "Timestamp")
    except MalformedPayload:
        return None  # anymail catches parse_datetime's ValueError (an impossible date)


def _object(parent: dict[str, Any], field: str) -> dict[str, Any]:
    """parent[field] as an object; {} when it is missing or null."""
    value = parent.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(f"{field} is not an object: {value!r}")
    return value


def _list(value: Any, field: str, missing_ok: bool = False) -> list[Any]:
    """A JSON array; null or missing is [] where missing_ok, else malformed.

    anymail iterates the value: an empty object or empty text gives nothing, as an
    empty array; the keys or characters of any other would be taken for entries.
    """
    if value is None and missing_ok:
        return []
    return batch_items(value, field)


def _objects(value: Any, field: str) -> list[dict[str, Any]]:
    items = _list(value, field)
    for item in items:
        if not isinstance(item, dict):
            raise MalformedPayload(f"a {field} entry is not an object: {item!r}")
    return items


def _required(item: dict[str, Any], key: str, field: str) -> Any:
    if key not in item:
        raise MalformedPayload(f"a {field} entry has no {key}: {item!r}")
    return item[key]
