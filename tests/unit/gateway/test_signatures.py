"""ESP signature checks against django-anymail's own validation, request by request.

Every request is signed with keys generated here, by an independent signer
where the ESP has one installed (svix for Resend), and checked twice: by our
verifier and by anymail's view (its ``run_validators``, basic auth switched
off). Both must agree with the expected answer, so a scheme we got wrong, or
one anymail checks more strictly, fails here.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from svix.webhooks import Webhook as SvixWebhook

from espstream.gateway.signatures import SignatureError, SignedRequest
from espstream.gateway.signatures.mailersend import MailerSendVerifier
from espstream.gateway.signatures.mailgun import MailgunVerifier
from espstream.gateway.signatures.mailtrap import MailtrapVerifier
from espstream.gateway.signatures.mandrill import MandrillVerifier
from espstream.gateway.signatures.postal import PostalVerifier
from espstream.gateway.signatures.resend import ResendVerifier
from espstream.gateway.signatures.sendgrid import SendGridVerifier
from espstream.gateway.signatures.unisender_go import UnisenderGoVerifier
from tests.support.parity.oracle import configure_django, django_request

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Case:
    name: str
    body: bytes
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)
    accepted: bool = True
    # Where we are deliberately stricter than anymail: what anymail answers instead.
    anymail_accepts: bool | None = None


def anymail_accepts(view_path: str, slug: str, case: Case, **view_kwargs: Any) -> bool:
    configure_django()
    import importlib

    from anymail.exceptions import AnymailWebhookValidationFailure

    module_name, class_name = view_path.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        view = getattr(importlib.import_module(module_name), class_name)(webhook_secret=[], **view_kwargs)
    request = django_request(slug, case.body, case.content_type, case.headers)
    try:
        view.run_validators(request)
    except AnymailWebhookValidationFailure:
        return False
    return True


def we_accept(verifier: Any, slug: str, case: Case) -> bool:
    request = SignedRequest(
        esp=slug,
        url=f"http://testserver/anymail/{slug}/tracking/",  # what Django's RequestFactory builds
        headers={name.lower(): value for name, value in case.headers.items()},
        body=case.body,
        content_type=case.content_type,
    )
    try:
        asyncio.run(verifier.verify(request))
    except SignatureError:
        return False
    return True


def check_both(cases: list[Case], verifier: Any, slug: str, view_path: str, **view_kwargs: Any) -> None:
    assert any(c.accepted for c in cases) and not all(c.accepted for c in cases)
    for case in cases:
        expected_anymail = case.accepted if case.anymail_accepts is None else case.anymail_accepts
        assert anymail_accepts(view_path, slug, case, **view_kwargs) is expected_anymail, f"anymail: {case.name}"
        assert we_accept(verifier, slug, case) is case.accepted, f"espstream: {case.name}"


def hmac_hex(key: str, message: bytes, digest: Any = hashlib.sha256) -> str:
    return hmac.new(key.encode(), message, digest).hexdigest()


# Mailgun


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    return hmac_hex(key, f"{timestamp}{token}".encode())


def mailgun_json(key: str, timestamp: Any = "1700000000", token: str = "a" * 50, signature: str | None = None) -> bytes:
    block = {"timestamp": timestamp, "token": token, "signature": signature or mailgun_signature(key, str(timestamp), token)}
    return json.dumps({"signature": block, "event-data": {"event": "delivered", "id": "x"}}).encode()


def multipart(fields: list[tuple[str, str]], boundary: str = "BoUnDaRy") -> tuple[bytes, str]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in fields
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


def test_mailgun_matches_anymail() -> None:
    key = secrets.token_hex(16)
    other = secrets.token_hex(16)
    signature = mailgun_signature(key, "1700000000", "tok")
    legacy = f"event=delivered&timestamp=1700000000&token=tok&signature={signature}".encode()
    legacy_multipart, multipart_type = multipart(
        [("event", "delivered"), ("timestamp", "1700000000"), ("token", "tok"), ("signature", signature)]
    )
    cases = [
        Case("json", mailgun_json(key)),
        Case("json with charset", mailgun_json(key), "application/json; charset=utf-8"),
        Case("json, timestamp a number", mailgun_json(key, timestamp=1700000000)),
        Case("json, other key", mailgun_json(other), accepted=False),
        Case("json, token changed", mailgun_json(key).replace(b'"aaaa', b'"baaa'), accepted=False),
        Case("json without signature", b'{"event-data": {"event": "delivered"}}', accepted=False),
        Case("json, signature incomplete", b'{"signature": {"token": "t", "signature": "s"}}', accepted=False),
        Case("not json", b"{nope", accepted=False),
        Case("json sent as text/plain", mailgun_json(key), "text/plain", accepted=False),
        Case("legacy form", legacy, FORM),
        Case("legacy multipart", legacy_multipart, multipart_type),
        Case("legacy, signature of another key", legacy.replace(signature.encode(), mailgun_signature(other, "1700000000", "tok").encode()), FORM, accepted=False),
        Case("legacy without token", b"event=delivered&timestamp=1700000000&signature=" + signature.encode(), FORM, accepted=False),
        # Conflicting fields: anymail reads the last value of each.
        Case("legacy, last values signed", b"token=other&" + legacy, FORM),
        Case("legacy, first values signed", legacy + b"&token=other", FORM, accepted=False),
    ]
    check_both(cases, MailgunVerifier(key), "mailgun", "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
               webhook_signing_key=key)


# Mandrill


def mandrill_signature(key: str, url: str, fields: dict[str, str]) -> str:
    signed = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def test_mandrill_matches_anymail() -> None:
    key = secrets.token_urlsafe(16)
    url = "http://testserver/anymail/mandrill/tracking/"
    events = json.dumps([{"event": "send", "msg": {"email": "ä@example.com"}}])
    body = "mandrill_events=" + __import__("urllib.parse").parse.quote(events)
    fields = {"mandrill_events": events}
    auth = "Basic " + base64.b64encode(b"esp:p\xc3\xa4ss").decode()
    cases = [
        Case("signed", body.encode(), FORM, {"X-Mandrill-Signature": mandrill_signature(key, url, fields)}),
        Case(
            "signed with basic auth in the URL",
            body.encode(),
            FORM,
            {"X-Mandrill-Signature": mandrill_signature(key, "http://esp:päss@testserver/anymail/mandrill/tracking/", fields),
             "Authorization": auth},
        ),
        Case("basic auth left out of the signed URL", body.encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, url, fields), "Authorization": auth}, accepted=False),
        Case("other URL", body.encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, "https://testserver/anymail/mandrill/tracking/", fields)},
             accepted=False),
        Case("field added", (body + "&extra=1").encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, url, fields)}, accepted=False),
        Case("two fields, sorted", (body + "&a=1").encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, url, {**fields, "a": "1"})}),
        Case("no signature header", body.encode(), FORM, accepted=False),
        # A repeated field: its last value is signed (request.POST.dict()), and the normalizer reads the last.
        Case("repeated field, last value signed", ("mandrill_events=%5B%5D&" + body).encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, url, fields)}),
        Case("repeated field, first value signed", (body + "&mandrill_events=%5B%5D").encode(), FORM,
             {"X-Mandrill-Signature": mandrill_signature(key, url, fields)}, accepted=False),
    ]
    check_both(cases, MandrillVerifier(key), "mandrill", "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
               webhook_key=key)


def test_mandrill_configured_url_is_what_is_signed() -> None:
    key = "k" * 20
    public = "https://hooks.example.com/prefix/webhooks/mandrill/tracking/"
    fields = {"mandrill_events": "[]"}
    case = Case("signed for the public URL", b"mandrill_events=%5B%5D", FORM,
                {"X-Mandrill-Signature": mandrill_signature(key, public, fields)})
    assert we_accept(MandrillVerifier(key, public), "mandrill", case)
    assert not we_accept(MandrillVerifier(key), "mandrill", case)  # the request's own URL differs


# Postal


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_body(private_key: Any) -> str:
    """The public key as ESP dashboards show it: the PEM's base64 without header and footer."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def rsa_sign(key: rsa.RSAPrivateKey, body: bytes, algorithm: hashes.HashAlgorithm) -> str:
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), algorithm)).decode()


def test_postal_matches_anymail(rsa_key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = b'{"event": "MessageSent", "payload": {"message": {"id": 1}}}'
    sha1, sha256 = rsa_sign(rsa_key, body, hashes.SHA1()), rsa_sign(rsa_key, body, hashes.SHA256())
    cases = [
        Case("SHA-1", body, headers={"X-Postal-Signature": sha1}),
        Case("SHA-1 and SHA-256", body, headers={"X-Postal-Signature": sha1, "X-Postal-Signature-256": sha256}),
        Case("other key", body, headers={"X-Postal-Signature": rsa_sign(other, body, hashes.SHA1())}, accepted=False),
        Case("body changed", body + b" ", headers={"X-Postal-Signature": sha1}, accepted=False),
        Case("not base64", body, headers={"X-Postal-Signature": "@@@"}, accepted=False),
        Case("no signature", body, accepted=False),
        Case("SHA-256 alone", body, headers={"X-Postal-Signature-256": sha256}, accepted=False),
        # Beyond anymail, which ignores the SHA-256 header: a present signature must be valid.
        Case("SHA-256 wrong", body, headers={"X-Postal-Signature": sha1, "X-Postal-Signature-256": sha1},
             accepted=False, anymail_accepts=True),
    ]
    key = public_key_body(rsa_key)
    check_both(cases, PostalVerifier(key), "postal", "anymail.webhooks.postal.PostalTrackingWebhookView", webhook_key=key)


def test_postal_key_may_be_a_whole_pem_and_must_be_rsa(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = b"{}"
    case = Case("whole PEM", body, headers={"X-Postal-Signature": rsa_sign(rsa_key, body, hashes.SHA1())})
    assert we_accept(PostalVerifier(pem.decode()), "postal", case)
    with pytest.raises(ValueError):
        PostalVerifier(public_key_body(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ValueError):
        PostalVerifier("not a key")


# SendGrid


def test_sendgrid_matches_anymail() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    body = b'[{"email": "a@example.com", "event": "delivered"}]\r\n'
    timestamp = str(int(time.time()))

    def signed(private: ec.EllipticCurvePrivateKey, ts: str = timestamp, payload: bytes = body) -> dict[str, str]:
        signature = private.sign(ts.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": ts}

    cases = [
        Case("signed", body, headers=signed(key)),
        Case("other key", body, headers=signed(other), accepted=False),
        Case("timestamp changed", body, headers={**signed(key), "X-Twilio-Email-Event-Webhook-Timestamp": "1"}, accepted=False),
        Case("body changed", body.strip(), headers=signed(key), accepted=False),
        Case("no timestamp", body, headers={"X-Twilio-Email-Event-Webhook-Signature": signed(key)["X-Twilio-Email-Event-Webhook-Signature"]}, accepted=False),
        Case("no signature", body, headers={"X-Twilio-Email-Event-Webhook-Timestamp": timestamp}, accepted=False),
        Case("signature not base64", body, headers={**signed(key), "X-Twilio-Email-Event-Webhook-Signature": "!"}, accepted=False),
    ]
    verification_key = public_key_body(key)
    check_both(cases, SendGridVerifier(verification_key), "sendgrid",
               "anymail.webhooks.sendgrid.SendGridTrackingWebhookView", tracking_webhook_verification_key=verification_key)


# Resend (Svix)


def svix_headers(secret: str, body: bytes, at: datetime | None = None, message_id: str = "msg_2abc") -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = SvixWebhook(secret).sign(message_id, at, body.decode())
    return {"svix-id": message_id, "svix-timestamp": str(int(at.timestamp())), "svix-signature": signature}


def test_resend_matches_anymail() -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    body = '{"type": "email.delivered", "data": {"to": ["é@example.com"]}}'.encode()
    good = svix_headers(secret, body)
    rotated = svix_headers(other, body)["svix-signature"] + " " + good["svix-signature"]
    cases = [
        Case("signed", body, headers=good),
        Case("several signatures, one ours", body, headers={**good, "svix-signature": rotated}),
        Case("v2 and v1 signatures", body, headers={**good, "svix-signature": "v2,AAAA " + good["svix-signature"]}),
        Case("other secret", body, headers=svix_headers(other, body), accepted=False),
        Case("body changed", body + b" ", headers=good, accepted=False),
        Case("id changed", body, headers={**good, "svix-id": "msg_other"}, accepted=False),
        Case("ten minutes old", body, headers=svix_headers(secret, body, datetime.now(UTC) - timedelta(minutes=10)), accepted=False),
        Case("ten minutes ahead", body, headers=svix_headers(secret, body, datetime.now(UTC) + timedelta(minutes=10)), accepted=False),
        Case("four minutes old", body, headers=svix_headers(secret, body, datetime.now(UTC) - timedelta(minutes=4))),
        Case("no id", body, headers={k: v for k, v in good.items() if k != "svix-id"}, accepted=False),
        Case("no timestamp", body, headers={k: v for k, v in good.items() if k != "svix-timestamp"}, accepted=False),
        Case("no signature", body, headers={k: v for k, v in good.items() if k != "svix-signature"}, accepted=False),
        Case("unbranded header names", body, headers={k.replace("svix-", "webhook-"): v for k, v in good.items()}),
        # The svix- name wins when present, even empty, as in Svix's library (the normalizer reads svix-id).
        Case("empty svix-id, signed webhook-id", body, headers={**good, "svix-id": "", "webhook-id": good["svix-id"]},
             accepted=False),
    ]
    check_both(cases, ResendVerifier(secret), "resend", "anymail.webhooks.resend.ResendTrackingWebhookView",
               signing_secret=secret)


# MailerSend and Mailtrap: HMAC-SHA256 of the body


def test_mailersend_matches_anymail() -> None:
    secret = secrets.token_urlsafe(24)
    body = b'{"type": "activity.sent", "data": {}}'
    cases = [
        Case("signed", body, headers={"Signature": hmac_hex(secret, body)}),
        Case("other secret", body, headers={"Signature": hmac_hex("x" + secret, body)}, accepted=False),
        Case("body changed", body + b"\n", headers={"Signature": hmac_hex(secret, body)}, accepted=False),
        Case("upper-case hex", body, headers={"Signature": hmac_hex(secret, body).upper()}, accepted=False),
        Case("no signature", body, accepted=False),
    ]
    check_both(cases, MailerSendVerifier(secret), "mailersend",
               "anymail.webhooks.mailersend.MailerSendTrackingWebhookView", signing_secret=secret)


def test_mailtrap_matches_anymail() -> None:
    secret = secrets.token_hex(20)
    body = b'{"events": [{"event": "delivery", "message_id": "m"}]}'
    cases = [
        Case("signed", body, headers={"Mailtrap-Signature": hmac_hex(secret, body)}),
        Case("other secret", body, headers={"Mailtrap-Signature": hmac_hex(secret + "x", body)}, accepted=False),
        Case("body changed", body.replace(b"delivery", b"bounce"), headers={"Mailtrap-Signature": hmac_hex(secret, body)}, accepted=False),
        Case("signature in MailerSend's header", body, headers={"Signature": hmac_hex(secret, body)}, accepted=False),
    ]
    check_both(cases, MailtrapVerifier(secret), "mailtrap", "anymail.webhooks.mailtrap.MailtrapTrackingWebhookView",
               tracking_secret=secret)


# Unisender Go


def unisender_body(api_key: str, payload: dict[str, Any]) -> bytes:
    """Signed as Unisender Go signs: MD5 of the body with the API key as auth, then that hash as auth."""
    with_key = json.dumps({"auth": api_key, **payload}, ensure_ascii=False).encode()
    return with_key.replace(api_key.encode(), hashlib.md5(with_key).hexdigest().encode())


def test_unisender_go_matches_anymail() -> None:
    api_key = secrets.token_hex(16)
    payload = {"events_by_user": [{"user_id": 1, "project_id": "p", "events": [{"event_name": "transactional_email_status", "event_data": {"email": "ü@example.com"}}]}]}
    body = unisender_body(api_key, payload)
    cases = [
        Case("signed", body),
        Case("other key", unisender_body("0" * 32, payload), accepted=False),
        Case("body changed", body.replace(b'"user_id": 1', b'"user_id": 2'), accepted=False),
        Case("no auth", json.dumps(payload).encode(), accepted=False),
        Case("auth not text", json.dumps({"auth": 5, **payload}).encode(), accepted=False),
        Case("not json", b"auth=x", accepted=False),
    ]
    check_both(cases, UnisenderGoVerifier(api_key), "unisender_go",
               "anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView", api_key=api_key)


# Bounded parsing


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    body = b"[" * 200_000 + b"]" * 200_000
    case = Case("nested", body)
    assert not we_accept(MailgunVerifier("k"), "mailgun", case)
    assert not we_accept(UnisenderGoVerifier("k"), "unisender_go", case)


def test_forms_over_django_field_limit_are_refused() -> None:
    key = "k" * 16
    signature = mailgun_signature(key, "1", "t")
    signed = f"timestamp=1&token=t&signature={signature}"
    within = "&".join(f"f{i}=x" for i in range(990)) + "&" + signed
    over = "&".join(f"f{i}=x" for i in range(1000)) + "&" + signed
    assert we_accept(MailgunVerifier(key), "mailgun", Case("990 fields", within.encode(), FORM))
    assert not we_accept(MailgunVerifier(key), "mailgun", Case("1003 fields", over.encode(), FORM))
    over_multipart, content_type = multipart([(f"f{i}", "x") for i in range(1001)])
    assert not we_accept(MailgunVerifier(key), "mailgun", Case("multipart", over_multipart, content_type))


# Values no ESP sends are refused (400), never an exception (500)


def test_odd_values_are_refused_not_a_crash() -> None:
    now = str(int(time.time()))
    resend = ResendVerifier("whsec_" + base64.b64encode(b"k" * 24).decode())
    svix = {"svix-id": "msg_1", "svix-timestamp": now, "svix-signature": "v1,AAAA"}
    cases: list[tuple[Any, str, Case]] = [
        # JSON escapes that decode to a lone surrogate, which has no UTF-8 bytes.
        (UnisenderGoVerifier("k" * 16), "unisender_go", Case("auth a lone surrogate", b'{"auth": "\\ud800"}')),
        (MailgunVerifier("k" * 16), "mailgun",
         Case("signature a lone surrogate", b'{"signature": {"timestamp": "1", "token": "t", "signature": "\\udfff"}}')),
        # Header text that is not ASCII, and a timestamp longer than int() reads.
        (resend, "resend", Case("signature not ASCII", b"{}", headers={**svix, "svix-signature": "v1,\xe9\xe9\xe9\xe9"})),
        (resend, "resend", Case("timestamp of 5000 digits", b"{}", headers={**svix, "svix-timestamp": "9" * 5000})),
    ]
    for verifier, slug, case in cases:
        assert not we_accept(verifier, slug, case), case.name


def test_sendgrid_timestamps_are_digits_and_their_age_is_limited_only_when_configured() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = b'[{"email": "a@example.com", "event": "delivered"}]'
    now = str(int(time.time()))

    def case(name: str, timestamp: str, signed: bytes | None = None, payload: bytes = body) -> Case:
        signature = key.sign(signed if signed is not None else timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
        return Case(name, payload, headers={"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                                            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})

    two_years_ago = str(int(time.time()) - 2 * 365 * 86400)
    anymail_compatible = SendGridVerifier(public_key_body(key))
    assert we_accept(anymail_compatible, "sendgrid", case("two years old", two_years_ago))
    for moved in (case("body bytes in the timestamp", now + "[{", now.encode() + body, body[2:]),
                  case("timestamp digits in the body", now[:-3], now.encode() + body, now[-3:].encode() + body),
                  case("not digits", " " + now), case("unicode digits", "١٧٠٠٠٠٠٠٠٠")):
        assert not we_accept(anymail_compatible, "sendgrid", moved), moved.name

    windowed = SendGridVerifier(public_key_body(key), max_age_seconds=300)
    assert we_accept(windowed, "sendgrid", case("now", now))
    assert not we_accept(windowed, "sendgrid", case("two years old", two_years_ago))
    assert not we_accept(windowed, "sendgrid", case("an hour ahead", str(int(time.time()) + 3600)))
    assert "within 300s" in windowed.description
