"""SendGrid (Twilio) signed event webhook: ECDSA P-256 / SHA-256 over timestamp + body.

The timestamp and the body are signed as one string, so their boundary is not:
bytes moved from the body's start into the timestamp header would still
verify, and digits moved the other way too. So the timestamp must be digits and
the body must not start with one (it is a JSON array): the signed string then
splits one way only. SendGrid retries for up to 72 hours and anymail limits no
age, so a freshness window is optional (``max_age_seconds``).
"""

import base64
import binascii
import re
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .base import SignatureError, SignedRequest
from .keys import load_public_key

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
_DIGITS = re.compile(r"[0-9]{1,20}")


class SendGridVerifier:
    def __init__(self, verification_key: str, max_age_seconds: float | None = None):
        key = load_public_key(verification_key)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY is not an elliptic-curve public key")
        self._key = key
        self._max_age = max_age_seconds
        window = f", timestamp within {max_age_seconds:g}s" if max_age_seconds else ""
        self.description = f"ECDSA signature (SendGrid tracking webhook verification key{window})"

    async def verify(self, request: SignedRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if signature is None or timestamp is None:
            raise SignatureError("SendGrid webhook without its signature and timestamp headers")
        if not _DIGITS.fullmatch(timestamp):
            raise SignatureError("SendGrid webhook whose timestamp is not a number of seconds")
        if request.body[:1].isdigit():
            raise SignatureError("SendGrid webhook whose body starts with a digit")
        try:
            self._key.verify(base64.b64decode(signature), timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError("SendGrid webhook with an incorrect signature") from None
        if self._max_age and abs(time.time() - int(timestamp)) > self._max_age:
            raise SignatureError(f"SendGrid webhook signed more than {self._max_age:g}s from now")


VERIFIER = SendGridVerifier
