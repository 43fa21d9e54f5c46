"""Every signature verifier under random requests: it accepts, or refuses with SignatureError, never crashes.

A verifier runs before anything about the request is trusted, so whatever a
client sends (any Host, credentials, signature headers, body, content type and
charset) must end in an answer: an exception other than SignatureError (or
SignatureUnavailable for SNS) is a 500 at the gateway. The known crashes are
pinned as examples. ``ESPSTREAM_FUZZ_EXAMPLES`` / ``ESPSTREAM_FUZZ_RANDOM``
hunt longer, as in tests/unit/normalizer/fuzz.
"""

import asyncio
import base64
import encodings
import pkgutil
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import example, given
from hypothesis import strategies as st

from espstream.gateway.signatures import SignatureError, SignatureUnavailable, SignedRequest, Verifier
from espstream.gateway.signatures.amazon_ses import SnsVerifier
from espstream.gateway.signatures.mailersend import MailerSendVerifier
from espstream.gateway.signatures.mailgun import MailgunVerifier
from espstream.gateway.signatures.mailtrap import MailtrapVerifier
from espstream.gateway.signatures.mandrill import MandrillVerifier
from espstream.gateway.signatures.postal import PostalVerifier
from espstream.gateway.signatures.resend import ResendVerifier
from espstream.gateway.signatures.sendgrid import SendGridVerifier
from espstream.gateway.signatures.unisender_go import UnisenderGoVerifier
from tests.support.sns import TOPIC
from tests.unit.gateway.test_signatures import public_key_body
from tests.unit.normalizer.fuzz.test_parsers_fuzz import fuzz_settings


async def _garbage_certificate(url: str) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n"


VERIFIERS: dict[str, Verifier] = {
    "mailgun": MailgunVerifier(secrets.token_hex(16)),
    "mandrill": MandrillVerifier(secrets.token_urlsafe(16)),
    "mandrill_configured_url": MandrillVerifier(secrets.token_urlsafe(16), "https://u:p/?#@hooks.example.com/m/"),
    "postal": PostalVerifier(public_key_body(rsa.generate_private_key(public_exponent=65537, key_size=2048))),
    "sendgrid": SendGridVerifier(public_key_body(ec.generate_private_key(ec.SECP256R1())), max_age_seconds=300),
    "resend": ResendVerifier("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
    "mailersend": MailerSendVerifier(secrets.token_urlsafe(24)),
    "mailtrap": MailtrapVerifier(secrets.token_hex(20)),
    "unisender_go": UnisenderGoVerifier(secrets.token_hex(16)),
    "amazon_ses": SnsVerifier([TOPIC], fetch=_garbage_certificate),
}

# Every codec Python has (text, bytes-to-bytes, broken with "replace"), and names that are none.
CODECS = sorted({module.name for module in pkgutil.iter_modules(encodings.__path__)} - {"aliases"})
CHARSETS = st.sampled_from([*CODECS, "utf-8", "x-unknown", "", "\x00"])
# Header values as an ASGI server hands them over: latin-1 text.
HEADER_TEXT = st.text(st.characters(max_codepoint=255, exclude_categories=["Cs"]), max_size=80)
SIGNATURE_HEADERS = [
    "x-mandrill-signature", "x-postal-signature", "x-postal-signature-256", "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp", "svix-id", "svix-timestamp", "svix-signature", "webhook-id",
    "webhook-timestamp", "webhook-signature", "signature", "mailtrap-signature", "x-amz-sns-message-type",
    "x-amz-sns-message-id", "x-amz-sns-topic-arn",
]


@st.composite
def content_types(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                                 "text/plain", ""]))
    params = draw(st.lists(st.sampled_from(["boundary=XX", 'boundary="XX"', "boundary=", "charset={}", "charset*={}''x",
                                            "charset*=utf-8''{}", "x=y"]), max_size=3))
    text = ";".join([kind, *(param.format(draw(CHARSETS)) for param in params)])
    return draw(st.one_of(st.just(text), st.none(), HEADER_TEXT))


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Random bytes, or multipart and urlencoded forms built from random pieces."""
    piece = st.one_of(st.binary(max_size=30), st.sampled_from([
        b"--XX\r\n", b"--XX--\r\n", b"\r\n", b'Content-Disposition: form-data; name="a"\r\n', b"A:\r\n",
        b'Content-Disposition: form-data; name="f"; filename="x"\r\n', b"Content-Transfer-Encoding: base64\r\n",
        b"\\ud800", b"+2D00-", b"\xff\xfe", b"xn--", b"timestamp=1&token=t&signature=s&", b"mandrill_events=%5B%5D&",
        b'{"signature": {"timestamp": "1", "token": "t", "signature": "s"}}', b'{"auth": "x"}', b"[", b"{",
    ]))
    return b"".join(draw(st.lists(piece, max_size=25)))


@st.composite
def requests(draw: st.DrawFn) -> SignedRequest:
    host = draw(st.one_of(st.just("gateway.example.com"), st.sampled_from(["[", "[::1", "a]", "h:x", "h/p", "h?q#f"]),
                          HEADER_TEXT))
    headers = {name: draw(HEADER_TEXT) for name in draw(st.lists(st.sampled_from(SIGNATURE_HEADERS), unique=True))}
    if draw(st.booleans()):
        credentials = draw(st.text(max_size=30)).encode("utf-8", "surrogatepass")
        headers["authorization"] = "Basic " + base64.b64encode(credentials).decode()
    return SignedRequest(
        esp="fuzz", url=f"{draw(st.sampled_from(['http', 'https']))}://{host}/webhooks/x/tracking/",
        headers=headers, body=draw(bodies()), content_type=draw(content_types()),
    )


def _mandrill_form(charset: str, name: bytes, host: str = "gateway.example.com") -> SignedRequest:
    body = b'--XX\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\nv\r\n--XX--\r\n'
    return SignedRequest(
        esp="mandrill", url=f"http://{host}/webhooks/mandrill/tracking/",
        headers={"x-mandrill-signature": "AAAA", "authorization": "Basic " + base64.b64encode(b"esp:pw").decode()},
        body=body, content_type=f"multipart/form-data; charset={charset}; boundary=XX",
    )


KNOWN_CRASHES = [  # (verifier, request) that once raised something else than SignatureError
    ("mandrill", _mandrill_form("utf-8", b"a", host="[")),
    *(("mandrill", _mandrill_form(charset, b"\\ud800")) for charset in ("unicode_escape", "raw_unicode_escape")),
    ("mandrill", _mandrill_form("utf-7", b"+2ADYAA-")),
    *(("mandrill", _mandrill_form(charset, b"\xff")) for charset in ("idna", "undefined", "punycode")),
]


def _verdict(verifier: Verifier, request: SignedRequest) -> str:
    try:
        asyncio.run(verifier.verify(request))
    except (SignatureError, SignatureUnavailable):
        return "refused"
    return "accepted"


@pytest.mark.parametrize(("name", "request_"), KNOWN_CRASHES)
def test_the_known_crashes_are_refusals(name: str, request_: SignedRequest) -> None:
    assert _verdict(VERIFIERS[name], request_) == "refused"


@pytest.mark.parametrize("name", sorted(VERIFIERS))
def test_random_requests_are_accepted_or_refused(name: str) -> None:
    @fuzz_settings(150)
    @given(request=requests())
    @example(request=KNOWN_CRASHES[0][1])
    def run(request: SignedRequest) -> None:
        assert _verdict(VERIFIERS[name], request) in ("accepted", "refused")

    run()
