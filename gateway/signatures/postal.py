"""Postal: RSA signatures of the body with the server's key.

``X-Postal-Signature`` (PKCS#1 v1.5, SHA-1) is required, as anymail requires
it; ``X-Postal-Signature-256`` (the same with SHA-256), which newer Postal
versions send as well, must also be valid when present.
"""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import SignatureError, SignedRequest
from .keys import load_public_key

SIGNATURE_HEADERS: tuple[tuple[str, hashes.HashAlgorithm], ...] = (
    ("x-postal-signature", hashes.SHA1()),
    ("x-postal-signature-256", hashes.SHA256()),
)


class PostalVerifier:
    description = "RSA signature (Postal webhook key)"

    def __init__(self, webhook_key: str):
        key = load_public_key(webhook_key)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("POSTAL_WEBHOOK_KEY is not an RSA public key")
        self._key = key

    async def verify(self, request: SignedRequest) -> None:
        if "x-postal-signature" not in request.headers:
            raise SignatureError("Postal webhook without an X-Postal-Signature header")
        for header, algorithm in SIGNATURE_HEADERS:
            signature = request.headers.get(header)
            if signature is not None:
                self._check(signature, request.body, algorithm)

    def _check(self, signature: str, body: bytes, algorithm: hashes.HashAlgorithm) -> None:
        try:
            self._key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), algorithm)
        except (InvalidSignature, binascii.Error, ValueError):
            raise SignatureError("Postal webhook with an incorrect signature") from None


VERIFIER = PostalVerifier
