"""Mailtrap: hex HMAC-SHA256 of the body with the webhook signing secret, in ``Mailtrap-Signature``."""

import hashlib
import hmac

from .base import SignatureError, SignedRequest


class MailtrapVerifier:
    description = "HMAC-SHA256 signature (Mailtrap tracking secret)"

    def __init__(self, signing_secret: str):
        self._key = signing_secret.encode("utf-8")

    async def verify(self, request: SignedRequest) -> None:
        signature = request.headers.get("mailtrap-signature")
        if signature is None:
            raise SignatureError("Mailtrap webhook without a Mailtrap-Signature header")
        expected = hmac.new(self._key, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode("utf-8"), expected.encode()):
            raise SignatureError("Mailtrap webhook with an incorrect signature")


VERIFIER = MailtrapVerifier
