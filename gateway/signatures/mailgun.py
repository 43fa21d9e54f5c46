"""Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key.

JSON webhooks carry them in a ``signature`` object; legacy form webhooks as
the form fields ``timestamp``, ``token`` and ``signature`` (the last value of
each, as anymail reads them).
"""

import hashlib
import hmac

from .base import SignatureError, SignedRequest
from .payloads import form_fields, load_json, media_type


class MailgunVerifier:
    description = "HMAC-SHA256 signature (Mailgun webhook signing key)"

    def __init__(self, signing_key: str):
        self._key = signing_key.encode("ascii")

    async def verify(self, request: SignedRequest) -> None:
        if media_type(request.content_type) == "application/json":
            timestamp, token, signature = await _json_fields(request.body)
        else:
            timestamp, token, signature = await _form_fields(request)
        try:
            message = f"{timestamp}{token}".encode("ascii")
            given = signature.encode("ascii")  # a hex digest; JSON can carry any text, lone surrogates included
        except UnicodeEncodeError:
            raise SignatureError("Mailgun signature fields that are not ASCII") from None
        expected = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given, expected.encode()):
            raise SignatureError("Mailgun webhook with an incorrect signature")


async def _json_fields(body: bytes) -> tuple[str, str, str]:
    payload = await load_json(body)
    try:
        block = payload["signature"]
        fields = block["timestamp"], block["token"], block["signature"]
    except (KeyError, TypeError):
        raise SignatureError("Mailgun webhook without a signature object") from None
    timestamp, token, signature = fields
    # Mailgun sends text (the timestamp sometimes as a number); anything else is not Mailgun's.
    if not all(isinstance(value, str) or (type(value) is int) for value in (timestamp, token)):
        raise SignatureError("Mailgun signature fields of the wrong type")
    if not isinstance(signature, str):
        raise SignatureError("Mailgun signature that is not text")
    return str(timestamp), str(token), signature


async def _form_fields(request: SignedRequest) -> tuple[str, str, str]:
    fields = await form_fields(request)
    try:
        return fields["timestamp"], fields["token"], fields["signature"]
    except KeyError:
        raise SignatureError("Mailgun webhook without timestamp, token and signature fields") from None


VERIFIER = MailgunVerifier
