"""Signing a webhook as its ESP does, with the keys the gateway checks it with (``espstream send``).

One function per scheme of ``gateway/signatures/``, reading what it signs with
the parsing the gateway's checks use (``schemas.webhook_body``), so a request
signed here is one the gateway accepts. Schemes the gateway only verifies with a public key (Postal,
SendGrid) or a certificate (Amazon SNS) cannot be signed with its settings:
``Unsignable`` says so.
"""

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

from espstream.gateway.settings import GatewaySettings
from espstream.schemas.esps import ESPS
from espstream.schemas.webhook_body import MalformedBody, form_fields, load_json, media_type


class Unsignable(Exception):
    """The ESP's signature cannot be made from the gateway's settings (or from this body): the message says why."""


@dataclass(frozen=True)
class Webhook:
    esp: str
    url: str  # where it is posted
    body: bytes
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)
    credentials: str | None = None  # basic auth "user:password"


def sign(webhook: Webhook, settings: GatewaySettings) -> Webhook:
    """``webhook`` with the signature its ESP would send, if the gateway checks one; else as it is."""
    names = ESPS[webhook.esp].signing_settings
    if not names or not getattr(settings, names[0]):
        return webhook  # the gateway checks basic auth alone
    signer = _SIGNERS.get(webhook.esp)
    if signer is None:
        raise Unsignable(
            f"the gateway checks {ESPS[webhook.esp].name}'s signature with a public key or certificate"
            f" (ESPSTREAM_{names[0].upper()}); only {ESPS[webhook.esp].name} holds the private key: sent as given"
        )
    try:
        return signer(webhook, *(getattr(settings, name) for name in names))
    except MalformedBody as error:  # the body is not what the scheme signs
        raise Unsignable(f"cannot sign this body: {error}") from None


def _hex_hmac_sha256(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _with_headers(webhook: Webhook, **headers: str) -> Webhook:
    lower = {name.lower() for name in headers}
    kept = {name: value for name, value in webhook.headers.items() if name.lower() not in lower}
    return replace(webhook, headers={**kept, **headers})


def _mailersend(webhook: Webhook, secret: str) -> Webhook:
    return _with_headers(webhook, Signature=_hex_hmac_sha256(secret.encode("ascii"), webhook.body))


def _mailtrap(webhook: Webhook, secret: str) -> Webhook:
    return _with_headers(webhook, **{"Mailtrap-Signature": _hex_hmac_sha256(secret.encode("utf-8"), webhook.body)})


def _mailgun(webhook: Webhook, key: str) -> Webhook:
    """The body's own timestamp and token signed; the old signature's text replaced in place, so nothing else moves."""
    if media_type(webhook.content_type) == "application/json":
        payload = load_json(webhook.body)
        block = payload.get("signature") if isinstance(payload, dict) else None
        fields = block if isinstance(block, dict) else {}
    else:
        fields = form_fields(webhook.body, webhook.content_type)
    timestamp, token, old = (fields.get(name) for name in ("timestamp", "token", "signature"))
    if timestamp is None or token is None or not isinstance(old, str) or not old:
        raise Unsignable("a Mailgun body needs its timestamp, token and signature fields to be signed")
    new = _hex_hmac_sha256(key.encode("ascii"), f"{timestamp}{token}".encode("ascii"))
    return replace(webhook, body=_replaced_once(webhook.body, old.encode("utf-8"), new.encode("ascii")))


def _mandrill(webhook: Webhook, key: str, configured_url: str | None) -> Webhook:
    """Over the URL as Mandrill was given it (``user:password@`` included) and the sorted form fields."""
    url = configured_url or _with_credentials(webhook.url, webhook.credentials)
    fields = form_fields(webhook.body, webhook.content_type)
    signed = url + "".join(name + fields[name] for name in sorted(fields))
    digest = hmac.new(key.encode("ascii"), signed.encode("utf-8"), hashlib.sha1).digest()
    return _with_headers(webhook, **{"X-Mandrill-Signature": base64.b64encode(digest).decode("ascii")})


def _resend(webhook: Webhook, secret: str) -> Webhook:
    """Svix: a fresh timestamp (the gateway refuses one 5 minutes off); the body's svix-id kept if it has one."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    given = {name.lower(): value for name, value in webhook.headers.items()}
    message_id = given.get("svix-id") or f"msg_{secrets.token_hex(12)}"
    timestamp = str(int(time.time()))
    signed = f"{message_id}.{timestamp}.".encode() + webhook.body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    return _with_headers(
        webhook, **{"svix-id": message_id, "svix-timestamp": timestamp, "svix-signature": f"v1,{signature}"}
    )


def _unisender_go(webhook: Webhook, api_key: str) -> Webhook:
    """``auth`` becomes the MD5 of the body with ``auth`` holding the key: the check, run backwards."""
    payload = load_json(webhook.body)
    auth = payload.get("auth") if isinstance(payload, dict) else None
    if not isinstance(auth, str) or not auth:
        raise Unsignable("a Unisender Go body needs an auth field to be signed")
    with_key = webhook.body.replace(auth.encode("utf-8"), api_key.encode("ascii"))
    digest = hashlib.md5(with_key, usedforsecurity=False).hexdigest()
    return replace(webhook, body=webhook.body.replace(auth.encode("utf-8"), digest.encode("ascii")))


_SIGNERS: dict[str, Callable[..., Webhook]] = {
    "mailersend": _mailersend,
    "mailgun": _mailgun,
    "mailtrap": _mailtrap,
    "mandrill": _mandrill,
    "resend": _resend,
    "unisender_go": _unisender_go,
}


def _replaced_once(body: bytes, old: bytes, new: bytes) -> bytes:
    if body.count(old) != 1:
        raise Unsignable("the body's old signature is not found exactly once in it: give a body with one to replace")
    return body.replace(old, new)


def _with_credentials(url: str, credentials: str | None) -> str:
    if not credentials:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{credentials}@{parts.netloc}", parts.path, parts.query, parts.fragment))
