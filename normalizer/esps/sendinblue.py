"""SendinBlue, Brevo's former name: the same webhooks at the legacy ``sendinblue`` URL.

anymail's ``SendinBlueTrackingWebhookView`` is Brevo's view under another ESP
name, so everything is read as in ``brevo``; only ``esp_name`` differs.
"""

from espstream.schemas import TrackingEvent
from espstream.schemas.esps import ESP_NAMES

from ..request import WebhookRequest
from .brevo import events_from


def parse_events(request: WebhookRequest) -> list[TrackingEvent]:
    return events_from(request, ESP_NAMES["sendinblue"])
