"""Amazon SES over Amazon SNS: the SNS message signature, the topic allowlist, subscription confirmation.

django-anymail checks only that the SNS headers agree with the body (and basic
auth); it does not verify the signature. Here every message is checked the way
AWS documents ("Verifying the signatures of Amazon SNS messages"):

- the body is one flat JSON object of strings (bounded, no duplicate keys);
- ``x-amz-sns-message-type``, ``x-amz-sns-message-id`` and
  ``x-amz-sns-topic-arn`` equal the body's Type, MessageId and TopicArn;
- the TopicArn is on the configured allowlist, checked before any network
  access: a valid signature alone proves only that *some* AWS account's topic
  sent the message, and anyone can point a topic at a public URL;
- the Timestamp is no older than SNS keeps retrying (one hour) plus clock skew;
- the signature (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA) verifies
  against the certificate at SigningCertURL, which must be exactly
  ``https://sns.<region>.amazonaws.com/<name>.pem`` (or ``….amazonaws.com.cn``
  for the China regions). The certificate's authenticity rests on fetching it
  over verified TLS from that AWS host, as the AWS SDK validators do.

A certificate that cannot be fetched right now (host unreachable, timeout, 5xx)
raises ``SignatureUnavailable`` rather than ``SignatureError``: the gateway
answers 503 and SNS retries (it retries only on 5xx and timeouts, never 4xx).

A verified SubscriptionConfirmation for an allowed topic is confirmed by
GETting its SubscribeURL after the raw record was stored (``after_stored``),
when auto-confirmation is on.
"""

import asyncio
import base64
import binascii
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from espstream.schemas.webhook_body import MalformedBody, charset

from .base import SignatureError, SignatureUnavailable, SignedRequest
from .payloads import parse_body

log = logging.getLogger("espstream.gateway.sns")

Fetch = Callable[[str], Awaitable[bytes]]

# The hosts SNS signs from and confirms on: one per region, commercial and GovCloud
# regions under amazonaws.com, the China regions (cn-north-1, cn-northwest-1,
# partition aws-cn) under amazonaws.com.cn. Matched against the whole URL text, so
# no userinfo, port, backslash or percent-encoding can slip past a URL parser.
_SNS_ORIGIN = r"https://sns\.(?:[a-z]{2}(?:-[a-z]+)+-[0-9]+\.amazonaws\.com|cn-[a-z]+-[0-9]+\.amazonaws\.com\.cn)"
SIGNING_CERT_URL = re.compile(_SNS_ORIGIN + r"/[A-Za-z0-9_-][A-Za-z0-9._-]*\.pem")
SUBSCRIBE_URL = re.compile(_SNS_ORIGIN + r"/\?[A-Za-z0-9._~:%&=+-]+")
_SNS_ANY_URL = re.compile(_SNS_ORIGIN + r"/[A-Za-z0-9._~:%&=?+-]*")

MESSAGE_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The documented string to sign, per message type, in this order; Subject only when present.
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
OPTIONAL_FIELDS = frozenset({"Subject"})
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
HEADER_FIELDS = {
    "x-amz-sns-message-type": "Type",
    "x-amz-sns-message-id": "MessageId",
    "x-amz-sns-topic-arn": "TopicArn",
}

# SNS retries an HTTP/S delivery for at most 3,600 s (a hard limit), and Timestamp is
# the publish time: anything older is a replay. The skew allows for clocks that differ.
MAX_MESSAGE_AGE = timedelta(hours=1)
CLOCK_SKEW = timedelta(minutes=5)

# An SNS envelope has about a dozen keys and at most 10 message attributes.
MAX_TOP_LEVEL_KEYS = 32
MAX_MESSAGE_ATTRIBUTES = 32

# SNS waits about 15 s for the answer; a certificate fetch must end well before.
FETCH_TIMEOUT_SECONDS = 5.0
# Certificates are about 2 KB, a ConfirmSubscription answer under 1 KB.
FETCH_MAX_BYTES = 64 * 1024
CERTIFICATE_CACHE_SIZE = 64
# Distinct certificate URLs fetched at once; beyond that, 503 rather than more connections.
MAX_CONCURRENT_FETCHES = 8


class FetchFailed(Exception):
    """A GET did not return the resource. ``permanent`` when retrying cannot help (4xx, refused URL, too large)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class HttpsFetch:
    """GET an Amazon SNS URL and return the body: HTTPS only, SNS hosts only, bounded in time and size.

    ``transport`` lets a caller route the (already checked) request elsewhere.
    """

    def __init__(
        self,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = FETCH_MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.transport = transport

    async def __call__(self, url: str) -> bytes:
        if not _SNS_ANY_URL.fullmatch(url):
            raise FetchFailed(
                f"refusing to fetch {url!r}: not an https://sns.<region>.amazonaws.com URL", permanent=True
            )
        try:
            async with asyncio.timeout(self.timeout):
                return await self._get(url)
        except TimeoutError as error:
            raise FetchFailed(f"GET {url} took over {self.timeout}s") from error
        except httpx.HTTPError as error:
            raise FetchFailed(f"GET {url} failed: {error!r}") from error

    async def _get(self, url: str) -> bytes:
        # No redirects: the answer must come from the host that was checked.
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport, follow_redirects=False) as client:
            # Identity encoding: the size limit counts what is held, no decompression bomb.
            async with client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
                if response.status_code != 200:
                    raise FetchFailed(
                        f"GET {url} answered {response.status_code}", permanent=response.status_code < 500
                    )
                if response.headers.get("content-encoding", "identity").lower() != "identity":
                    raise FetchFailed(f"GET {url}: unrequested content encoding", permanent=True)
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchFailed(f"GET {url}: body over {self.max_bytes} bytes", permanent=True)
                return bytes(body)


default_fetch: Fetch = HttpsFetch()


class SnsVerifier:
    """Checks Amazon SNS messages (amazon_ses webhooks) and confirms allowed subscriptions."""

    def __init__(
        self,
        topic_arns: Iterable[str],
        auto_confirm: bool = True,
        fetch: Fetch | None = None,
        *,
        cache_size: int = CERTIFICATE_CACHE_SIZE,
    ) -> None:
        self.topic_arns = frozenset(topic_arns)
        if not self.topic_arns:
            raise ValueError("Amazon SNS verification needs at least one allowed TopicArn")
        for arn in self.topic_arns:
            _check_topic_arn(arn)
        self.auto_confirm = auto_confirm
        self.fetch = fetch or default_fetch
        self.cache_size = cache_size
        self._certificates: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._pending: dict[str, asyncio.Future[x509.Certificate]] = {}
        confirm = "auto-confirmed" if auto_confirm else "confirmed by hand"
        self.description = (
            f"Amazon SNS message signature, topics {', '.join(sorted(self.topic_arns))} (subscriptions {confirm})"
        )

    async def verify(self, request: SignedRequest) -> None:
        await self._verified_message(request)

    async def after_stored(self, request: SignedRequest) -> None:
        """Confirm a stored SubscriptionConfirmation by GETting its SubscribeURL, when auto-confirm is on."""
        # Checked again (the certificate is cached): this must never act on an unverified request.
        message = await self._verified_message(request)
        if message["Type"] != "SubscriptionConfirmation":
            return
        topic = message["TopicArn"]
        if not self.auto_confirm:
            log.warning(
                "SNS subscription to %s not confirmed (auto-confirm is off): open its SubscribeURL, "
                "kept in the raw record, or confirm it in the SNS console",
                topic,
            )
            return
        try:
            await self.fetch(message["SubscribeURL"])
        except Exception as error:  # a background task: say what happened, nothing else can
            log.error("SNS subscription to %s NOT confirmed: %s (confirm it in the SNS console)", topic, error)
        else:
            log.info("SNS subscription to %s confirmed", topic)

    async def _verified_message(self, request: SignedRequest) -> dict[str, Any]:
        _check_charset(request.content_type)
        message = await parse_body(request.body, parse_envelope)
        kind = message.get("Type")
        if kind not in MESSAGE_TYPES:
            raise SignatureError(f"unknown SNS message Type {kind!r}")
        for header, field in HEADER_FIELDS.items():
            value = request.headers.get(header)
            if value is None:
                raise SignatureError(f"SNS header {header} is missing")
            if value != message.get(field):
                raise SignatureError(f"SNS header {header} does not match the body's {field}")
        topic = message["TopicArn"]
        if topic not in self.topic_arns:
            raise SignatureError(f"SNS topic {topic!r} is not allowed (ESPSTREAM_AMAZON_SES_TOPIC_ARNS)")
        _check_timestamp(message.get("Timestamp"))
        if kind == "SubscriptionConfirmation":
            _check_subscribe_url(message)
        version = message.get("SignatureVersion")
        if version not in HASHES:
            raise SignatureError(f"unsupported SNS SignatureVersion {version!r}")
        cert_url = message.get("SigningCertURL")
        if not isinstance(cert_url, str) or not SIGNING_CERT_URL.fullmatch(cert_url):
            raise SignatureError(
                f"SNS SigningCertURL {cert_url!r} is not an https://sns.<region>.amazonaws.com/….pem URL"
            )
        signature = _decode_signature(message.get("Signature"))
        certificate = await self._certificate(cert_url)
        _verify_signature(certificate, signature, string_to_sign(message), HASHES[version]())
        return message

    async def _certificate(self, url: str) -> x509.Certificate:
        cached = self._certificates.get(url)
        if cached is not None:
            self._certificates.move_to_end(url)
            return cached
        pending = self._pending.get(url)
        if pending is None:
            if len(self._pending) >= MAX_CONCURRENT_FETCHES:
                raise SignatureUnavailable("too many SNS signing certificates being fetched at once")
            # One fetch per URL however many requests wait for it; it completes (and is
            # cached) even when the request that started it goes away.
            pending = asyncio.ensure_future(self._load_certificate(url))
            self._pending[url] = pending
            pending.add_done_callback(lambda _: self._pending.pop(url, None))
            pending.add_done_callback(_retrieve_exception)
        return await asyncio.shield(pending)

    async def _load_certificate(self, url: str) -> x509.Certificate:
        try:
            pem = await self.fetch(url)
        except FetchFailed as error:
            log.warning("SNS signing certificate not fetched: %s", error)
            if error.permanent:
                raise SignatureError(f"no SNS signing certificate at {url}") from error
            raise SignatureUnavailable(f"SNS signing certificate {url} unavailable, retry later") from error
        except Exception as error:
            log.warning("SNS signing certificate %s not fetched: %r", url, error)
            raise SignatureUnavailable(f"SNS signing certificate {url} unavailable, retry later") from error
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as error:
            raise SignatureError(f"SigningCertURL {url} did not return a PEM certificate") from error
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise SignatureError(f"SNS signing certificate {url} has no RSA key")
        self._certificates[url] = certificate
        while len(self._certificates) > self.cache_size:
            self._certificates.popitem(last=False)
        return certificate


def parse_envelope(body: bytes) -> dict[str, Any]:
    """The SNS JSON envelope: an object of strings (and MessageAttributes), or SignatureError."""
    try:
        parsed = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise SignatureError(f"the body is not an SNS JSON message: {error}") from error
    if not isinstance(parsed, dict):
        raise SignatureError("the body is not a JSON object")
    if len(parsed) > MAX_TOP_LEVEL_KEYS:
        raise SignatureError("the SNS message has too many fields")
    for key, value in parsed.items():
        if key == "MessageAttributes":
            _check_message_attributes(value)
        elif key == "Subject" and value is None:
            continue  # an absent subject, however it is spelled; it is left out of the signed string
        elif not isinstance(value, str):
            raise SignatureError(f"SNS field {key!r} is not a string")
    return parsed


def string_to_sign(message: dict[str, Any]) -> bytes:
    """The documented canonical form: ``Name\\nValue\\n`` for each signed field of the message's Type."""
    lines = []
    for field in SIGNED_FIELDS[message["Type"]]:
        value = message.get(field)
        if value is None:
            if field in OPTIONAL_FIELDS:
                continue
            raise SignatureError(f"SNS field {field!r} is missing")
        lines.append(f"{field}\n{value}\n")
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError as error:  # lone surrogates from \ud800-style escapes
        raise SignatureError("the SNS message is not valid Unicode") from error


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; the record is kept forever and parsed by others.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return result


def _check_charset(content_type: str | None) -> None:
    """UTF-8, as SNS sends it: the body is verified as UTF-8, and a reader that honours another
    declared charset (anymail, the normalizer) would see other characters than were signed."""
    try:
        declared = charset(content_type)
    except MalformedBody as error:
        raise SignatureError(str(error)) from None
    if declared is not None and declared != "utf-8":
        raise SignatureError(f"an SNS message is UTF-8, not {declared!r}")


def _check_message_attributes(value: object) -> None:
    if not isinstance(value, dict) or len(value) > MAX_MESSAGE_ATTRIBUTES:
        raise SignatureError("SNS MessageAttributes is not an object of attributes")
    for attribute in value.values():
        if not isinstance(attribute, dict) or not all(isinstance(item, str) for item in attribute.values()):
            raise SignatureError("SNS MessageAttributes is not an object of {Type, Value} strings")


def _check_timestamp(value: object) -> None:
    try:
        timestamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        timestamp = None
    if timestamp is None or timestamp.tzinfo is None:
        raise SignatureError(f"SNS Timestamp {value!r} is not an ISO 8601 time with a zone")
    now = datetime.now(UTC)
    if timestamp < now - MAX_MESSAGE_AGE - CLOCK_SKEW:
        raise SignatureError(f"SNS message from {value} is older than SNS retries: a replay")
    if timestamp > now + CLOCK_SKEW:
        raise SignatureError(f"SNS message from {value} is in the future")


def _check_subscribe_url(message: dict[str, Any]) -> None:
    """The SubscribeURL confirms this very subscription on an SNS host (it is signed, and still checked)."""
    url = message.get("SubscribeURL")
    if not isinstance(url, str) or not SUBSCRIBE_URL.fullmatch(url):
        raise SignatureError(f"SNS SubscribeURL {url!r} is not an https://sns.<region>.amazonaws.com/?… URL")
    try:
        query = parse_qs(urlsplit(url).query, strict_parsing=True)
    except ValueError:  # an empty or '='-less field
        raise SignatureError(f"SNS SubscribeURL {url!r} has a malformed query") from None
    expected = {"Action": ["ConfirmSubscription"], "TopicArn": [message["TopicArn"]], "Token": [message.get("Token")]}
    if any(query.get(name) != values for name, values in expected.items()):
        raise SignatureError("SNS SubscribeURL does not confirm this message's topic and token")


def _decode_signature(value: object) -> bytes:
    if not isinstance(value, str) or not value:
        raise SignatureError("SNS Signature is missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise SignatureError("SNS Signature is not base64") from error


def _verify_signature(
    certificate: x509.Certificate, signature: bytes, signed: bytes, algorithm: hashes.HashAlgorithm
) -> None:
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SignatureError("the SNS signing certificate is not valid now")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)  # checked when loaded
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    except InvalidSignature as error:
        raise SignatureError("wrong SNS message signature") from error


def _check_topic_arn(arn: str) -> None:
    """A configured topic must look like arn:<partition>:sns:<region>:<account>:<name>: catches typos at startup."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not all(parts[1:]):
        raise ValueError(f"not an SNS topic ARN: {arn!r} (expected arn:aws:sns:<region>:<account>:<topic>)")


def _retrieve_exception(done: asyncio.Future[Any]) -> None:
    # Every waiter may have gone away; the failure was logged, do not warn about it again.
    if not done.cancelled():
        done.exception()


VERIFIER = SnsVerifier
