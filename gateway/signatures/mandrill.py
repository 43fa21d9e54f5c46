"""Mandrill: base64 HMAC-SHA1 of the webhook URL followed by the sorted POST fields.

Mandrill signs the URL exactly as configured there, basic-auth credentials
included. Behind a proxy that rewrites the host or path, configure it
(MANDRILL_WEBHOOK_URL); otherwise it is rebuilt from the request as anymail does.
A refusal names the URL without the credentials: the configured URL is not
quoted at all (a password with a ``/``, ``?`` or ``#`` in it would make any
split of it misplace them), the rebuilt one is quoted as it was before they
were added.
"""

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

from ..auth import request_basic_auth
from .base import SignatureError, SignedRequest
from .payloads import form_fields


class MandrillVerifier:
    def __init__(self, webhook_key: str, webhook_url: str | None = None):
        self._key = webhook_key.encode("ascii")
        self._url = webhook_url
        source = "configured URL" if webhook_url else "URL rebuilt from the request"
        self.description = f"HMAC-SHA1 signature (Mandrill webhook key, {source})"

    async def verify(self, request: SignedRequest) -> None:
        signature = request.headers.get("x-mandrill-signature")
        if signature is None:
            raise SignatureError("Mandrill webhook without an X-Mandrill-Signature header")
        url = self._url or _with_basic_auth(request.url, request.headers.get("authorization"))
        fields = await form_fields(request)
        signed = url + "".join(name + fields[name] for name in sorted(fields))
        try:
            message = signed.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, from a charset like unicode_escape: nothing Mandrill signs
            raise SignatureError("Mandrill webhook with form fields that are not Unicode text") from None
        expected = base64.b64encode(hmac.new(self._key, message, hashlib.sha1).digest())
        if not hmac.compare_digest(signature.encode("utf-8"), expected):
            shown = "the configured ESPSTREAM_MANDRILL_WEBHOOK_URL" if self._url else f"URL {request.url}"
            raise SignatureError(f"Mandrill webhook with an incorrect signature (for {shown})")


def _with_basic_auth(url: str, authorization: str | None) -> str:
    """The URL with the request's basic-auth 'user:pass@' in it, as the ESP was given it."""
    credentials = request_basic_auth(authorization)
    if credentials is None:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # a Host header like "[": no URL (Django answers 400 to such a host)
        raise SignatureError("Mandrill webhook whose Host header makes no URL") from None
    return urlunsplit((parts.scheme, f"{credentials}@{parts.netloc}", parts.path, parts.query, parts.fragment))


VERIFIER = MandrillVerifier
