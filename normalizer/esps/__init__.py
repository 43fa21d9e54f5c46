"""One module per ESP, each with ``parse_events(request) -> list[TrackingEvent]``; its name is in ``schemas.esps``.

The module of slug ``x`` is ``espstream.normalizer.esps.x``; a slug without one dead-letters as unsupported.
"""

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from espstream.schemas.esps import ESP_SLUGS

from ..errors import UnsupportedEsp

# Slugs whose parser exists.
PARSERS: dict[str, str] = {
    module.name: f"{__name__}.{module.name}"
    for module in pkgutil.iter_modules(__path__)
    if module.name in ESP_SLUGS
}


@cache
def esp_module(esp: str) -> ModuleType:
    try:
        return importlib.import_module(PARSERS[esp])
    except KeyError:
        if esp in ESP_SLUGS:
            raise UnsupportedEsp(f"no normalizer for ESP {esp!r} yet") from None
        raise UnsupportedEsp(f"unknown ESP {esp!r}") from None
