"""MailerSend: hex HMAC-SHA256 of the body with the webhook signing secret, in ``Signature``."""

import hashlib
import hmac

from .base import SignatureError, SignedRequest


class MailerSendVerifier:
    description = "HMAC-SHA256 signature (MailerSend signing secret)"

    def __init__(self, signing_secret: str):
        self._key = signing_secret.encode("ascii")

    async def verify(self, request: SignedRequest) -> None:
        signature = request.headers.get("signature")
        if signature is None:
            raise SignatureError("MailerSend webhook without a Signature header")
        expected = hmac.new(self._key, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode("utf-8"), expected.encode()):
            raise SignatureError("MailerSend webhook with an incorrect signature")


VERIFIER = MailerSendVerifier
