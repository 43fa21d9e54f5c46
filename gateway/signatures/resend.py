"""Resend: the Svix scheme (Standard Webhooks).

HMAC-SHA256, keyed with the base64 secret after ``whsec_``, over
``{svix-id}.{svix-timestamp}.{body}``; ``svix-signature`` holds one or more
space-separated ``v1,<base64>`` signatures (several during a secret rotation),
any of which may match. A timestamp more than 5 minutes from now is refused,
so a captured request cannot be replayed later.
"""

import base64
import binascii
import hashlib
import hmac
import time

from .base import SignatureError, SignedRequest

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
MAX_TIMESTAMP_DIGITS = 12


class ResendVerifier:
    description = "Svix HMAC-SHA256 signature (Resend signing secret)"

    def __init__(self, signing_secret: str):
        self._key = _secret_bytes(signing_secret)

    async def verify(self, request: SignedRequest) -> None:
        message_id = _header(request, "id")
        timestamp = _header(request, "timestamp")
        signatures = _header(request, "signature")
        if not (message_id and timestamp and signatures):
            raise SignatureError("Resend webhook without svix-id, svix-timestamp and svix-signature headers")
        # Seconds since the epoch; a longer digit string is no time (and int() refuses over 4300 digits).
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS:
            raise SignatureError("Resend webhook with an invalid svix-timestamp")
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            raise SignatureError("Resend webhook timestamp more than 5 minutes from now")
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("Resend webhook body is not UTF-8") from None
        signed = f"{message_id}.{timestamp}.{body}".encode("utf-8")
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not any(hmac.compare_digest(expected, given) for given in _v1_signatures(signatures)):
            raise SignatureError("Resend webhook with an incorrect signature")


def _header(request: SignedRequest, name: str) -> str:
    # Svix's own library also reads the unbranded Standard Webhooks names, only when the svix- one is
    # absent: an empty svix-id must not let a signed webhook-id through while the normalizer reads svix-id.
    value = request.headers.get(f"svix-{name}")
    if value is None:
        value = request.headers.get(f"webhook-{name}")
    return value or ""


def _v1_signatures(header: str) -> list[bytes]:
    found = []
    for versioned in header.split(" "):
        version, _, signature = versioned.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(signature, validate=True))
        except ValueError:  # binascii.Error, or text that is not ASCII
            continue
    return found


def _secret_bytes(secret: str) -> bytes:
    """The HMAC key, decoded as Svix decodes it (unpadded base64 allowed)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "==")
    except binascii.Error:
        raise ValueError("RESEND_SIGNING_SECRET is not a whsec_ base64 secret") from None
    if not key:
        raise ValueError("RESEND_SIGNING_SECRET is empty")
    return key


VERIFIER = ResendVerifier
