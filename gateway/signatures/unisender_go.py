"""Unisender Go: ``auth`` in the JSON body is the MD5 of the body with ``auth`` replaced by the API key.

As anymail checks it: the body's bytes, with every occurrence of the sent
``auth`` value replaced by the key, hashed; no assumption about how Unisender
Go serializes its JSON.
"""

import hashlib
import hmac

from .base import SignatureError, SignedRequest
from .payloads import load_json


class UnisenderGoVerifier:
    description = "MD5 signature (Unisender Go API key)"

    def __init__(self, api_key: str):
        self._key = api_key.encode("ascii")

    async def verify(self, request: SignedRequest) -> None:
        payload = await load_json(request.body)
        auth = payload.get("auth") if isinstance(payload, dict) else None
        if not isinstance(auth, str) or not auth:
            raise SignatureError("Unisender Go webhook without an auth field")
        try:
            sent = auth.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape: no MD5 hex digest
            raise SignatureError("Unisender Go webhook with an incorrect signature") from None
        signed = request.body.replace(sent, self._key)
        expected = hashlib.md5(signed, usedforsecurity=False).hexdigest()
        if not hmac.compare_digest(sent, expected.encode()):
            raise SignatureError("Unisender Go webhook with an incorrect signature")


VERIFIER = UnisenderGoVerifier
