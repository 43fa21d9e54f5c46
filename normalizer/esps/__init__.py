"""One module per ESP, each with ``ESP_NAME`` and ``parse_events(request) -> list[TrackingEvent]``."""

import importlib
from functools import cache
from types import ModuleType

from schemas.esps import ESP_SLUGS

from ..errors import UnsupportedEsp

# Slugs whose parser exists; the others dead-letter as unsupported until they have one.
PARSERS: dict[str, str] = {
    "mailgun": "normalizer.esps.mailgun",
    "postmark": "normalizer.esps.postmark",
}


@cache
def esp_module(esp: str) -> ModuleType:
    try:
        return importlib.import_module(PARSERS[esp])
    except KeyError:
        if esp in ESP_SLUGS:
            raise UnsupportedEsp(f"no normalizer for ESP {esp!r} yet") from None
        raise UnsupportedEsp(f"unknown ESP {esp!r}") from None
