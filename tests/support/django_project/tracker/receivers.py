"""Receivers written for django-anymail, unchanged: each event is appended to a JSON-lines file."""

import json
import os

from anymail.signals import AnymailTrackingEvent, tracking
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.dispatch import receiver
from django.http import QueryDict


def _append(record: dict) -> None:
    with open(os.environ["ANYMAIL_EVENTS_FILE"], "a") as out:
        out.write(json.dumps(record) + "\n")


@receiver(tracking)
def record_event(sender, event, esp_name, **kwargs):
    if event.recipient == "fail@example.com":
        raise RuntimeError("the bounce handler cannot reach the CRM")
    _append(
        {
            "receiver": "record_event",
            "sender": f"{sender.__module__}.{sender.__qualname__}",
            "is_anymail_event": isinstance(event, AnymailTrackingEvent),
            "esp_name": esp_name,
            "event_type": event.event_type,
            "timestamp": event.timestamp.isoformat(),
            "aware": event.timestamp.tzinfo is not None,
            "message_id": event.message_id,
            "recipient": event.recipient,
            "tags": event.tags,
            "metadata": event.metadata,
            "reject_reason": event.reject_reason,
            "mta_response": event.mta_response,
            "esp_event_is_querydict": isinstance(event.esp_event, QueryDict),
            "esp_event_event": event.esp_event.get("event") if isinstance(event.esp_event, QueryDict) else None,
            "kwargs": sorted(kwargs),
            "dedupe_id": kwargs.get("dedupe_id"),
        }
    )


@receiver(tracking, sender=PostmarkTrackingWebhookView)
def postmark_only(sender, event, esp_name, **kwargs):
    _append({"receiver": "postmark_only", "message_id": event.message_id})
