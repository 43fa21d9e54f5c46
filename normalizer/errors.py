"""Why a raw webhook could not be normalized. The class name goes into the dead letter."""


class NormalizeError(Exception):
    """A raw webhook that cannot become tracking events."""


class UnsupportedEsp(NormalizeError):
    """No parser for this ESP slug."""


class MalformedPayload(NormalizeError):
    """The body is not what the ESP sends: not JSON, not a form, wrong shape."""


class MisconfiguredWebhook(NormalizeError):
    """A payload anymail refuses as misconfigured, e.g. an inbound email posted to a tracking URL."""


class MalformedRecord(NormalizeError):
    """A raw record whose own headers are unreadable (e.g. a received-at that is no time)."""
