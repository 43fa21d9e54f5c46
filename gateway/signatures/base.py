"""What every ESP signature check sees and how it says no.

A verifier runs in the gateway after basic auth and after the whole body was
read (within the size limit), before anything is written. It raises
``SignatureError`` (answered 400, as anymail answers), ``SignatureUnavailable``
(503) or returns normally.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class SignatureError(Exception):
    """The request is not signed by the ESP: answered 400, nothing written."""


class SignatureUnavailable(Exception):
    """The signature cannot be checked now (e.g. the signing certificate is unreachable): 503, the ESP retries."""


@dataclass(frozen=True)
class SignedRequest:
    esp: str
    # The URL as the ESP saw it (configured public URL, or reconstructed behind a proxy).
    url: str
    # Request headers, names lower-cased.
    headers: Mapping[str, str]
    body: bytes
    content_type: str | None


class Verifier(Protocol):
    # How the ESP is protected, for the startup log line ("HMAC-SHA256 signature (Mailgun signing key)").
    description: str

    async def verify(self, request: SignedRequest) -> None: ...
