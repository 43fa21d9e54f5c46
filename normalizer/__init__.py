"""Raw ESP webhooks -> normalized tracking events (the pure API and the Kafka service)."""

from .core import normalize
from .errors import MalformedPayload, MisconfiguredWebhook, NormalizeError, UnsupportedEsp
from .request import NormalizeOptions

__version__ = "0.1.0"

__all__ = ["normalize", "NormalizeOptions", "NormalizeError", "MalformedPayload", "MisconfiguredWebhook", "UnsupportedEsp"]
