"""One reading of a body's charset: the gateway's SNS check, the normalizer's decoding, Django's ``request.encoding``.

The gateway verifies an SNS message as UTF-8 and refuses a body declared in another charset; the
normalizer decodes the body in the declared charset, as Django does for anymail. Both take it from
``schemas.webhook_body.charset``, so a body the gateway accepted is read as the text that was verified.
"""

import asyncio
import codecs
import json
import string
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from espstream import normalizer
from espstream.gateway.signatures.amazon_ses import SnsVerifier, parse_envelope
from espstream.gateway.signatures.base import SignatureError, SignedRequest
from espstream.normalizer.esps.amazon_ses import _sns_message
from espstream.normalizer.request import WebhookRequest
from espstream.schemas.webhook_body import MalformedBody, charset
from tests.support.parity.oracle import configure_django, django_request
from tests.support.sns import TOPIC

NAMES = ["utf-8", "UTF8", "Utf-8", "latin-1", "ISO-8859-1", "utf-16", "utf-7", "cp500", "utf-8-sig", "rot13",
         "base64", "no-such-codec", "", "utf\x00-8"]  # fmt: skip
KEYS = st.sampled_from(["charset", "CHARSET", "Charset"])
CHARSET_NAMES = st.one_of(st.sampled_from(NAMES), st.text(string.ascii_letters + string.digits + "-_", max_size=10))

PARAMETERS = st.one_of(
    st.builds(lambda key, name, quoted: f'{key}="{name}"' if quoted else f"{key}={name}", KEYS, CHARSET_NAMES, st.booleans()),
    # RFC 2231: charset*=<charset of the value>'<language>'<value, percent-encoded>
    st.builds(
        lambda key, encoding, language, name, escaped: f"{key}*={encoding}'{language}'{quote(name) if escaped else name}",
        KEYS, st.sampled_from(["", "utf-8", "UTF-8", "us-ascii", "latin-1", "no-such-codec"]),
        st.sampled_from(["", "en"]), CHARSET_NAMES, st.booleans(),
    ),
    st.builds(lambda key, name, cut: f"{key}*0={name[:cut]}; {key}*1={name[cut:]}", KEYS, CHARSET_NAMES, st.integers(1, 9)),
    st.sampled_from(["boundary=b", "format=flowed", "charset", "charset*"]),
)  # fmt: skip
CONTENT_TYPES = st.one_of(
    st.builds(
        lambda media, separator, parameters: media + "".join(separator + parameter for parameter in parameters),
        st.sampled_from(["text/plain", "application/json", "TEXT/Plain"]),
        st.sampled_from(["; ", ";", " ;  "]),
        st.lists(PARAMETERS, max_size=3),
    ),
    st.none(),
    st.text(max_size=40),
)

# Characters that differ between the encodings; "+ACI-" is a quote in UTF-7.
ENVELOPE = json.dumps(
    {"Type": "Notification", "MessageId": "m-1", "TopicArn": TOPIC, "Message": '{"note": "Zoë +ACI- ü"}'},
    ensure_ascii=False,
)
BODIES = st.one_of(
    st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-7", "cp500", "utf-8-sig"]).map(ENVELOPE.encode),
    st.binary(max_size=64),
)


@settings(max_examples=600, deadline=None)
@given(CONTENT_TYPES, BODIES)
def test_a_body_the_gateway_accepts_is_the_one_the_normalizer_reads(content_type: str | None, body: bytes) -> None:
    try:
        _check_charset(content_type)
        verified = parse_envelope(body)
    except SignatureError:
        verified = None
    try:
        read = _sns_message(WebhookRequest(body, content_type))
    except normalizer.MalformedPayload:
        read = None
    if verified is not None:
        assert read == verified
    try:
        normalizer.normalize("amazon_ses", body, content_type)
    except normalizer.NormalizeError:
        pass  # a dead letter; any other exception fails the test


@settings(max_examples=600, deadline=None)
@given(CONTENT_TYPES)
def test_the_charset_is_djangos_request_encoding(content_type: str | None) -> None:
    configure_django()
    try:
        encoding = django_request("amazon_ses", b"{}", content_type, {}).encoding
    except (ValueError, TypeError) as error:  # Django cannot make the request: a 500 there
        if "RFC 2231" in str(error):  # an unknown charset* charset
            with pytest.raises(MalformedBody):
                charset(content_type)
        else:  # a NUL in the name, a parameter the email package trips over: read as UTF-8
            assert charset(content_type) is None
        return
    assert charset(content_type) == (codecs.lookup(encoding).name if encoding else None)


def _check_charset(content_type: str | None) -> None:
    """The verifier's first check, through the verifier: it refuses here or goes on to the headers."""
    request = SignedRequest("amazon_ses", "https://example.com/", {}, b"{}", content_type)
    try:
        asyncio.run(SnsVerifier([TOPIC]).verify(request))
    except SignatureError as error:
        if "Type" not in str(error):  # refused for the charset, not for the empty message after it
            raise


def test_an_rfc_2231_charset_in_an_unknown_charset_is_refused_and_dead_lettered() -> None:
    content_type = "text/plain; charset*=no-such-codec''utf-8"
    request = SignedRequest("amazon_ses", "https://example.com/", {}, ENVELOPE.encode(), content_type)
    with pytest.raises(SignatureError, match="unknown charset"):
        asyncio.run(SnsVerifier([TOPIC]).verify(request))
    with pytest.raises(normalizer.MalformedPayload, match="unknown charset"):
        normalizer.normalize("amazon_ses", ENVELOPE.encode(), content_type)
