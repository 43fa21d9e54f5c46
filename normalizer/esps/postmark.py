"""Postmark tracking webhooks, as anymail's ``PostmarkTrackingWebhookView`` reads them.

One JSON object per request, whatever the record type; the content type is not
looked at (anymail does not either).
"""

from datetime import datetime
from typing import Any

from espstream.schemas import EventType, RejectReason, TrackingEvent

from ..errors import MalformedPayload, MisconfiguredWebhook
from ..fields import lookup, metadata_dict, optional_text, tag_list
from ..request import WebhookRequest
from ..timestamps import iso_timestamp

# Postmark RecordType -> normalized type. Bounce and SpamComplaint are refined by
# their Type, SubscriptionChange by its SuppressionReason (TYPES below).
RECORD_TYPES: dict[str, str] = {
    "Bounce": EventType.BOUNCED,
    "Click": EventType.CLICKED,
    "Delivery": EventType.DELIVERED,
    "Open": EventType.OPENED,
    "SpamComplaint": EventType.COMPLAINED,
    "SubscriptionChange": EventType.UNSUBSCRIBED,
}

# Postmark bounce Type (and SuppressionReason) -> (normalized type, reject reason).
TYPES: dict[str, tuple[str, str | None]] = {
    "HardBounce": (EventType.BOUNCED, RejectReason.BOUNCED),
    "Transient": (EventType.DEFERRED, None),
    "Unsubscribe": (EventType.UNSUBSCRIBED, RejectReason.UNSUBSCRIBED),
    "Subscribe": (EventType.SUBSCRIBED, None),
    "AutoResponder": (EventType.AUTORESPONDED, None),
    "AddressChange": (EventType.AUTORESPONDED, None),
    "DnsError": (EventType.DEFERRED, None),
    "SpamNotification": (EventType.COMPLAINED, RejectReason.SPAM),
    # The receiving MTA is testing Postmark:
    "OpenRelayTest": (EventType.DEFERRED, None),
    "Unknown": (EventType.UNKNOWN, None),
    "SoftBounce": (EventType.BOUNCED, RejectReason.BOUNCED),
    "VirusNotification": (EventType.BOUNCED, RejectReason.OTHER),
    "ChallengeVerification": (EventType.AUTORESPONDED, None),
    "BadEmailAddress": (EventType.REJECTED, RejectReason.INVALID),
    "SpamComplaint": (EventType.COMPLAINED, RejectReason.SPAM),
    "ManuallyDeactivated": (EventType.REJECTED, RejectReason.BLOCKED),
    "Unconfirmed": (EventType.REJECTED, None),
    "Blocked": (EventType.REJECTED, RejectReason.BLOCKED),
    "SMTPApiError": (EventType.FAILED, None),
    "InboundError": (EventType.INBOUND_FAILED, None),
    "DMARCPolicy": (EventType.REJECTED, RejectReason.BLOCKED),
    "TemplateRenderingFailed": (EventType.FAILED, None),
    "ManualSuppression": (EventType.UNSUBSCRIBED, RejectReason.UNSUBSCRIBED),
}

# The first of these present is the event's time (bounce: BouncedAt, open: ReceivedAt...).
TIMESTAMP_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")

INBOUND_ON_TRACKING_URL = (
    "a Postmark inbound email was posted to the tracking webhook URL:"
    " Postmark's inbound webhook is set to the tracking URL instead of an inbound one"
)


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    esp_event = request.json()
    if not isinstance(esp_event, dict):
        raise MalformedPayload(f"a Postmark webhook body is a JSON object, not {type(esp_event).__name__}")
    return [esp_to_event(esp_event)]


def esp_to_event(esp_event: dict[str, Any]) -> TrackingEvent:
    if "RecordType" in esp_event:
        record_type = esp_event["RecordType"]
        if record_type == "Inbound":
            raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
        event_type = lookup(RECORD_TYPES, record_type, EventType.UNKNOWN)
    elif "FromFull" in esp_event:
        raise MisconfiguredWebhook(INBOUND_ON_TRACKING_URL)
    else:
        event_type = EventType.UNKNOWN

    reject_reason = None
    if event_type in (EventType.BOUNCED, EventType.COMPLAINED):
        event_type, reject_reason = lookup(TYPES, esp_event.get("Type"), (event_type, reject_reason))
    if event_type == EventType.UNSUBSCRIBED:
        if esp_event.get("SuppressSending", True):
            # Postmark does not tell an unsubscribe from a bounce other than by the reason.
            event_type, reject_reason = lookup(
                TYPES, esp_event.get("SuppressionReason"), (event_type, reject_reason)
            )
        else:
            event_type, reject_reason = TYPES["Subscribe"]

    metadata = metadata_dict(esp_event.get("Metadata"), "Metadata")
    # A message id anymail generated (bulk sends) wins over Postmark's.
    message_id = metadata["anymail_id"] if "anymail_id" in metadata else esp_event.get("MessageID")
    # anymail's str() turns a null ID into the text "None"; kept for parity.
    event_id = str(esp_event["ID"]) if "ID" in esp_event else None
    return TrackingEvent(
        event_type=event_type,
        timestamp=_timestamp(esp_event),
        event_id=event_id,
        message_id=optional_text(message_id, "MessageID"),
        # Email in bounces, Recipient in the others.
        recipient=optional_text(_first_present(esp_event, ("Email", "Recipient")), "Email/Recipient"),
        metadata=metadata,
        tags=tag_list([esp_event["Tag"]], "Tag") if "Tag" in esp_event else [],
        reject_reason=reject_reason,
        description=optional_text(esp_event.get("Description"), "Description"),
        mta_response=optional_text(esp_event.get("Details"), "Details"),
        user_agent=optional_text(esp_event.get("UserAgent"), "UserAgent"),
        click_url=optional_text(esp_event.get("OriginalLink"), "OriginalLink"),
        esp_event=esp_event,
    )


def _timestamp(esp_event: dict[str, Any]) -> datetime | None:
    for field in TIMESTAMP_FIELDS:
        if field in esp_event:
            return iso_timestamp(esp_event[field], field)
    return None


def _first_present(esp_event: dict[str, Any], fields: tuple[str, ...]) -> Any:
    """The value of the first field present, even if null (as anymail's getfirst)."""
    for field in fields:
        if field in esp_event:
            return esp_event[field]
    return None
