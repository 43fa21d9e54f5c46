"""Amazon SNS for the tests: a signer with its certificate, a fake SNS host, signed messages."""

import asyncio
import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from espstream.gateway.signatures.amazon_ses import (
    HttpsFetch,
    SnsVerifier,
)
from espstream.gateway.signatures.base import SignatureError, SignedRequest

REGION = "us-east-2"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:ses-tracking"
OTHER_TOPIC = f"arn:aws:sns:{REGION}:999999999999:someone-elses-topic"
CERT_PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
CERT_URL = f"https://sns.{REGION}.amazonaws.com{CERT_PATH}"
SES_EVENT = {
    "eventType": "Delivery",
    "mail": {"messageId": "0100017", "destination": ["recipient@example.com"], "headers": []},
    "delivery": {"recipients": ["recipient@example.com"]},
}


# --- keys and certificates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signer:
    key: Any
    pem: bytes


def make_signer(
    common_name: str = "sns.amazonaws.com",
    *,
    key: Any = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Signer:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return Signer(key, certificate.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def sns_signer() -> Signer:
    return make_signer()


@pytest.fixture(scope="module")
def impostor() -> Signer:
    return make_signer()


# --- a loopback "sns.<region>.amazonaws.com" ---------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0


@dataclass
class FakeSnsHost:
    """A real HTTP server on loopback answering for the SNS hosts; it records every request it gets."""

    port: int
    routes: dict[str, Route]
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path with query)

    def hits(self, path_prefix: str) -> list[str]:
        return [path for _host, path in self.requests if path.startswith(path_prefix)]


def serve(routes: dict[str, Route]) -> tuple[ThreadingHTTPServer, FakeSnsHost]:
    host = FakeSnsHost(0, routes)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            host.requests.append((self.headers.get("Host", ""), self.path))
            route = host.routes.get(self.path.split("?", 1)[0], Route(404, b"not found"))
            time.sleep(route.delay)
            self.send_response(route.status)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, host


@pytest.fixture(scope="module")
def sns_server(sns_signer: Signer, impostor: Signer) -> Iterator[FakeSnsHost]:
    server, host = serve({})
    yield host
    server.shutdown()
    server.server_close()


@pytest.fixture
def sns_host(sns_server: FakeSnsHost, sns_signer: Signer, impostor: Signer) -> FakeSnsHost:
    """The loopback SNS host with a fresh request log and the usual routes."""
    confirm = b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult/></ConfirmSubscriptionResponse>"
    sns_server.routes = {
        CERT_PATH: Route(body=sns_signer.pem),
        "/SimpleNotificationService-impostor.pem": Route(body=impostor.pem),
        "/": Route(body=confirm),
    }
    sns_server.requests = []
    return sns_server


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Sends each (already checked) request to the loopback server instead of the AWS host it names."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        async with httpx.AsyncHTTPTransport() as transport:
            response = await transport.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body))


def loopback_fetch(host: FakeSnsHost, **kwargs: Any) -> HttpsFetch:
    return HttpsFetch(transport=LoopbackTransport(host.port), **kwargs)


# --- messages, signed as AWS documents ---------------------------------------------------------------------------


def aws_time(at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def string_to_sign(message: dict[str, Any]) -> bytes:
    """From the AWS documentation: ``Name\\nValue\\n`` for each field, in this order; Subject only if present."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{name}\n{message[name]}\n" for name in names if name in message).encode()


def sign(message: dict[str, Any], signer: Signer, version: str = "1") -> dict[str, Any]:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = signer.key.sign(string_to_sign(message), padding.PKCS1v15(), algorithm)
    return message | {"SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}


def notification(topic: str = TOPIC, subject: str | None = None, **fields: Any) -> dict[str, Any]:
    message = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": json.dumps(SES_EVENT, indent=2),  # SNS keeps the SES event's newlines
        "Timestamp": aws_time(),
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:1234",
    }
    if subject is not None:
        message["Subject"] = subject
    return message | fields


def confirmation(kind: str = "SubscriptionConfirmation", topic: str = TOPIC, **fields: Any) -> dict[str, Any]:
    token = uuid.uuid4().hex * 4
    region = topic.split(":")[3]
    action = "ConfirmSubscription" if kind == "SubscriptionConfirmation" else "Subscribe"
    message = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": f"https://sns.{region}.amazonaws.com/?Action={action}&TopicArn={topic}&Token={token}",
        "Timestamp": aws_time(),
        "SigningCertURL": CERT_URL,
    }
    return message | fields


def request(message: dict[str, Any], body: bytes | None = None, **headers: str) -> SignedRequest:
    sent = {
        "x-amz-sns-message-type": str(message.get("Type")),
        "x-amz-sns-message-id": str(message.get("MessageId")),
        "x-amz-sns-topic-arn": str(message.get("TopicArn")),
        "content-type": "text/plain; charset=UTF-8",
    }
    sent |= {name.replace("_", "-"): value for name, value in headers.items()}
    sent = {name: value for name, value in sent.items() if value != "<omit>"}
    return SignedRequest(
        esp="amazon_ses",
        url="https://webhooks.example.com/webhooks/amazon_ses/tracking/",
        headers=sent,
        body=json.dumps(message).encode() if body is None else body,
        content_type=sent.get("content-type"),
    )


def verifier(host: FakeSnsHost, auto_confirm: bool = True, **kwargs: Any) -> SnsVerifier:
    return SnsVerifier([TOPIC], auto_confirm, loopback_fetch(host), **kwargs)


def refused(check: SnsVerifier, signed: SignedRequest) -> str:
    with pytest.raises(SignatureError) as error:
        asyncio.run(check.verify(signed))
    return str(error.value)


# --- what SNS sends is accepted ----------------------------------------------------------------------------------
