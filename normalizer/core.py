"""``normalize()``: a raw webhook in, anymail-equal tracking events out. Pure: no Kafka."""

from collections.abc import Mapping
from functools import partial
from hashlib import blake2b

from espstream.schemas import TrackingEvent
from espstream.schemas.esps import ESP_NAMES
from espstream.schemas.raw import LazyMapping

from .errors import MalformedPayload
from .esps import esp_module
from .request import DEFAULT_OPTIONS, NormalizeOptions, WebhookRequest


def normalize(
    esp: str,
    body: bytes,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    options: NormalizeOptions = DEFAULT_OPTIONS,
) -> list[TrackingEvent]:
    """The tracking events in one webhook request, in the order anymail would send them.

    Raises NormalizeError (or, for a parser bug, any other exception) when the
    request cannot be normalized; the service dead-letters it with that reason.
    """
    module = esp_module(esp)
    request = WebhookRequest(
        body=body,
        content_type=content_type,
        headers=LazyMapping(partial(_lower_cased, headers if headers is not None else {})),
        options=options,
    )
    try:
        events = module.parse_events(request)
    except RecursionError:
        # JSON (the body, or JSON text inside it) nested beyond the parser's stack.
        raise MalformedPayload("JSON nested too deeply to parse") from None
    # Same ESP and body -> same ids: an ESP's resend or a replay is recognisable.
    digest = blake2b(esp.encode() + b"\0" + body, digest_size=16).hexdigest()
    for index, event in enumerate(events):
        event.esp_name = ESP_NAMES[esp]
        event.dedupe_id = f"{digest}-{index}"
    return events


def _lower_cased(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
