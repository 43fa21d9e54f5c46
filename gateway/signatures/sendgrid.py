"""SendGrid (Twilio) signed event webhook: ECDSA P-256 / SHA-256 over timestamp + body."""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .base import SignatureError, SignedRequest
from .keys import load_public_key

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


class SendGridVerifier:
    description = "ECDSA signature (SendGrid tracking webhook verification key)"

    def __init__(self, verification_key: str):
        key = load_public_key(verification_key)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY is not an elliptic-curve public key")
        self._key = key

    async def verify(self, request: SignedRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if signature is None or timestamp is None:
            raise SignatureError("SendGrid webhook without its signature and timestamp headers")
        try:
            self._key.verify(
                base64.b64decode(signature), timestamp.encode("utf-8") + request.body, ec.ECDSA(hashes.SHA256())
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError("SendGrid webhook with an incorrect signature") from None


VERIFIER = SendGridVerifier
