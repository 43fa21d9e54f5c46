"""The gateway as the only door: signatures, basic auth, enabled ESPs, failing closed, slow and huge clients.

Real gateway processes over real HTTP against the real broker; "nothing
written" is read back from the raw topic.
"""

import asyncio
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from espstream.embedded import EmbeddedBroker, free_port
from espstream.gateway.app import ConfigurationError, create_app
from espstream.gateway.settings import GatewaySettings
from espstream.plumbing.topics import ensure_topics
from espstream.schemas.esps import ESP_SLUGS
from tests.conftest import settings_from_env
from tests.integration.test_pipeline import Pipeline, pipeline_env
from tests.support.services import Service, count_records, eventually, read_topic
from tests.unit.gateway.test_signatures import (
    hmac_hex,
    mailgun_json,
    mandrill_signature,
    public_key_body,
    rsa_sign,
    svix_headers,
    unisender_body,
)

BODY_TIMEOUT = 1
HEADER_TIMEOUT = 1
MAX_HEADERS = 30
MAX_HEADER_BYTES = 8192
Signer = Callable[[bytes], dict[str, str]]


class Keys:
    """Fresh keys for every ESP scheme, and how each ESP would sign a body with them."""

    def __init__(self) -> None:
        self.mailgun = secrets.token_hex(16)
        self.mandrill = secrets.token_urlsafe(16)
        self.postal = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.sendgrid = ec.generate_private_key(ec.SECP256R1())
        self.resend = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.mailersend = secrets.token_urlsafe(24)
        self.mailtrap = secrets.token_hex(20)
        self.unisender_go = secrets.token_hex(16)

    def env(self, tmp: Path) -> dict[str, str]:
        postal_file = tmp / "postal.key"
        postal_file.write_text(public_key_body(self.postal) + "\n")  # as a mounted secret: trailing newline
        return {
            "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": self.mailgun,
            "ESPSTREAM_MANDRILL_WEBHOOK_KEY": self.mandrill,
            "ESPSTREAM_POSTAL_WEBHOOK_KEY_FILE": str(postal_file),
            "ESPSTREAM_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": public_key_body(self.sendgrid),
            "ESPSTREAM_RESEND_SIGNING_SECRET": self.resend,
            "ESPSTREAM_MAILERSEND_SIGNING_SECRET": self.mailersend,
            "ESPSTREAM_MAILTRAP_SIGNING_SECRET": self.mailtrap,
            "ESPSTREAM_UNISENDER_GO_API_KEY": self.unisender_go,
        }

    def signed(self, esp: str, marker: str) -> tuple[bytes, str, dict[str, str]]:
        """A body carrying ``marker``, its content type and the headers that sign it."""
        payload = {"event": "delivered", "marker": marker}
        body = json.dumps(payload).encode()
        if esp == "mailgun":
            block = json.loads(mailgun_json(self.mailgun, token=marker))["signature"]
            return json.dumps({"signature": block, "event-data": payload}).encode(), "application/json", {}
        if esp == "postal":
            return body, "application/json", {
                "X-Postal-Signature": rsa_sign(self.postal, body, hashes.SHA1()),
                "X-Postal-Signature-256": rsa_sign(self.postal, body, hashes.SHA256()),
            }
        if esp == "sendgrid":
            timestamp = str(int(time.time()))
            signature = self.sendgrid.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            return body, "application/json", {
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            }
        if esp == "resend":
            return body, "application/json", svix_headers(self.resend, body)
        if esp == "mailersend":
            return body, "application/json", {"Signature": hmac_hex(self.mailersend, body)}
        if esp == "mailtrap":
            return body, "application/json", {"Mailtrap-Signature": hmac_hex(self.mailtrap, body)}
        if esp == "unisender_go":
            return unisender_body(self.unisender_go, payload), "application/json", {}
        raise AssertionError(esp)


SIGNED_ESPS = ["mailgun", "postal", "sendgrid", "resend", "mailersend", "mailtrap", "unisender_go"]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def gateway(broker: EmbeddedBroker, keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Basic auth (from a file) plus every ESP's signature key; sparkpost disabled; short timeouts."""
    tmp = tmp_path_factory.mktemp("secure-gateway")
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    secret_file = tmp / "webhook-secret"
    secret_file.write_text(env.pop("ESPSTREAM_WEBHOOK_SECRET") + "\n")
    env |= keys.env(tmp) | {
        "ESPSTREAM_WEBHOOK_SECRET_FILE": str(secret_file),
        "ESPSTREAM_ENABLED_ESPS": ",".join(e for e in ("mailgun mandrill postal sendgrid resend mailersend mailtrap "
                                                       "unisender_go postmark amazon_ses").split()),
        "ESPSTREAM_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "ESPSTREAM_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "ESPSTREAM_MAX_HEADER_COUNT": str(MAX_HEADERS),
        "ESPSTREAM_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    ensure_topics(settings_from_env(env))
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway"], env, tmp / "gateway.log").start(port)
    user, password = secret_file.read_text().strip().split(":", 1)
    yield Pipeline(env, f"http://127.0.0.1:{port}", (user, password), broker.bootstrap_servers, service, tmp)
    service.stop()


def raw_values(gateway: Pipeline) -> list[bytes]:
    return [m.value() for m in read_topic(gateway.bootstrap_servers, gateway.topic("raw"))]


@pytest.mark.parametrize("esp", SIGNED_ESPS)
def test_a_signed_webhook_is_stored_and_a_tampered_one_refused(gateway: Pipeline, keys: Keys, esp: str) -> None:
    marker = secrets.token_hex(8)
    body, content_type, headers = keys.signed(esp, marker)
    tampered = body.replace(marker.encode(), secrets.token_hex(8).encode())

    refused = gateway.post(esp, tampered, content_type, headers)
    # Basic auth alone is not enough once a key is set.
    unsigned = gateway.post(esp, json.dumps({"event": "delivered", "marker": marker}).encode(), content_type)
    accepted = gateway.post(esp, body, content_type, headers)

    assert (refused.status_code, unsigned.status_code, accepted.status_code) == (400, 400, 200)
    assert "signature" in refused.json()["detail"]
    values = raw_values(gateway)
    assert body in values
    assert tampered not in values and not any(marker.encode() in v for v in values if v != body)


@pytest.mark.parametrize("esp", ["mailgun", "postmark"])
def test_basic_auth_is_checked_first_and_in_addition(gateway: Pipeline, keys: Keys, esp: str) -> None:
    body, content_type, headers = keys.signed("mailgun", secrets.token_hex(8))
    before = count_records(gateway.bootstrap_servers, gateway.topic("raw"))
    for auth in (None, (gateway.auth[0], "wrong")):
        response = gateway.post(esp, body, content_type, headers, auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert count_records(gateway.bootstrap_servers, gateway.topic("raw")) == before


def test_mandrill_signs_the_url_with_its_basic_auth_and_the_scheme_a_trusted_proxy_forwarded(
    gateway: Pipeline, keys: Keys
) -> None:
    events = json.dumps([{"event": "send", "_id": secrets.token_hex(8)}])
    body = b"mandrill_events=" + httpx.QueryParams({"x": events}).__str__().split("=", 1)[1].encode()
    user, password = gateway.auth
    host = gateway.url.removeprefix("http://")
    path = "/webhooks/mandrill/tracking/"

    def post(signed_url: str, **headers: str) -> int:
        signature = mandrill_signature(keys.mandrill, signed_url, {"mandrill_events": events})
        return gateway.post("mandrill", body, "application/x-www-form-urlencoded",
                            {"X-Mandrill-Signature": signature, **headers}).status_code

    assert post(f"http://{host}{path}") == 400  # Mandrill was given the URL with the credentials in it
    assert post(f"http://{user}:{password}@{host}{path}") == 200
    # TLS ended at a proxy on 127.0.0.1 (trusted by default): the ESP saw https.
    assert post(f"https://{user}:{password}@{host}{path}", **{"X-Forwarded-Proto": "https"}) == 200
    assert post(f"http://{user}:{password}@{host}{path}", **{"X-Forwarded-Proto": "https"}) == 400


def test_disabled_esp_is_404_and_writes_nothing(gateway: Pipeline) -> None:
    before = count_records(gateway.bootstrap_servers, gateway.topic("raw"))
    response = gateway.post("sparkpost", b"[]")
    assert response.status_code == 404
    assert "disabled" in response.json()["detail"]
    assert httpx.head(f"{gateway.url}/webhooks/sparkpost/tracking/").status_code == 404
    assert httpx.head(f"{gateway.url}/webhooks/postmark/tracking/").status_code == 200
    assert count_records(gateway.bootstrap_servers, gateway.topic("raw")) == before


def test_startup_logs_how_each_esp_is_protected(gateway: Pipeline) -> None:
    log = gateway.normalizer.log()  # the Pipeline's service is this gateway
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    lines = {record["message"] for record in records if record["logger"] == "espstream.gateway"}
    assert "mailgun: basic auth + HMAC-SHA256 signature (Mailgun webhook signing key)" in lines
    assert "postal: basic auth + RSA signature (Postal webhook key)" in lines
    assert "mailtrap: basic auth + HMAC-SHA256 signature (Mailtrap tracking secret)" in lines
    assert "postmark: basic auth" in lines
    assert "sparkpost: disabled (404)" in lines
    assert any(line.startswith("amazon_ses: basic auth; SNS signatures not checked") for line in lines)

    assert {line.split(":", 1)[0] for line in lines if line.split(":", 1)[0] in ESP_SLUGS} == set(ESP_SLUGS)


# Slow and huge clients


def raw_request(gateway: Pipeline, head: bytes, body: bytes = b"") -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=15)
    connection.sendall(head + body)
    return connection


def read_all(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def auth_header(gateway: Pipeline) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(":".join(gateway.auth).encode()) + b"\r\n"


def test_a_slow_body_gets_408_and_does_not_hold_the_server(gateway: Pipeline, keys: Keys) -> None:
    head = (b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + auth_header(gateway) + b"Content-Length: 1000\r\n\r\n")
    slow = raw_request(gateway, head, b'{"slow": ')
    # Meanwhile the gateway serves others.
    assert gateway.post("postmark", b'{"meanwhile": 1}').status_code == 200
    answer = read_all(slow)  # the gateway answers and closes
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'{"slow": ' not in raw_values(gateway)


def test_a_slow_request_head_is_cut_off(gateway: Pipeline) -> None:
    slow = raw_request(gateway, b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
    assert gateway.post("postmark", b'{"during-slow-head": 1}').status_code == 200
    assert read_all(slow) == b""  # closed without an answer
    slow.close()


def test_a_kept_alive_connection_cannot_be_held_with_blank_lines(gateway: Pipeline) -> None:
    """Blank lines begin no request, yet any byte cancels uvicorn's keep-alive timeout."""
    head = b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\n" + auth_header(gateway) + b"Content-Length: 2\r\n\r\n"
    connection = raw_request(gateway, head, b"{}")
    assert connection.recv(65536).startswith(b"HTTP/1.1 200 ")
    connection.settimeout(0.2)
    deadline = time.monotonic() + HEADER_TIMEOUT + 8  # well past the header timeout; unbounded before
    closed = False
    while not closed and time.monotonic() < deadline:
        try:
            connection.sendall(b"\r\n")
            closed = connection.recv(1) == b""
        except TimeoutError:
            continue
        except OSError:  # reset by the closed peer
            closed = True
    connection.close()
    assert closed


def test_a_client_that_leaves_mid_body_is_no_server_error(gateway: Pipeline) -> None:
    head = (b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + auth_header(gateway) + b"Content-Length: 100\r\n\r\n")
    marker = secrets.token_hex(8).encode()
    raw_request(gateway, head, b'{"left": "' + marker).close()
    # The gateway noticed (it logs it) and did not treat it as a crash.
    eventually(lambda: "closed the connection before sending its body" in gateway.normalizer.log(), timeout=10)
    assert "Exception in ASGI application" not in gateway.normalizer.log()
    assert not any(marker in value for value in raw_values(gateway))


def test_two_content_types_are_refused(gateway: Pipeline, keys: Keys) -> None:
    """The signature is checked against one reading of the body; the record must not offer another."""
    marker = secrets.token_hex(8)
    body, content_type, headers = keys.signed("mailgun", marker)
    twice = [("Content-Type", content_type), ("Content-Type", "application/x-www-form-urlencoded")]
    response = httpx.post(f"{gateway.url}/webhooks/mailgun/tracking/", content=body, auth=gateway.auth,
                          headers=twice)
    assert response.status_code == 400
    assert "Content-Type" in response.json()["detail"]
    assert not any(marker.encode() in value for value in raw_values(gateway))
    assert gateway.post("mailgun", body, content_type, headers).status_code == 200


def test_too_many_or_too_large_headers_are_refused_with_431(gateway: Pipeline) -> None:
    before = count_records(gateway.bootstrap_servers, gateway.topic("raw"))
    many = {f"X-Extra-{i}": "1" for i in range(MAX_HEADERS + 1)}
    assert gateway.post("postmark", b"{}", headers=many).status_code == 431
    assert gateway.post("postmark", b"{}", headers={"X-Large": "a" * MAX_HEADER_BYTES}).status_code == 431
    # One header sent in many small pieces counts as a whole.
    head = b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\nX-Piecewise: "
    connection = raw_request(gateway, head)
    for _ in range(MAX_HEADER_BYTES // 1000 + 1):
        connection.sendall(b"b" * 1000)
    assert read_all(connection).startswith(b"HTTP/1.1 431 ")
    connection.close()
    assert gateway.post("postmark", b"{}", headers={f"X-Extra-{i}": "1" for i in range(MAX_HEADERS // 2)}).status_code == 200
    assert count_records(gateway.bootstrap_servers, gateway.topic("raw")) == before + 1


# Failing closed


def run_gateway(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESPSTREAM_")}
    return subprocess.run([sys.executable, "-m", "espstream", "gateway"], env=clean | env,
                          capture_output=True, text=True, timeout=30)


def test_refuses_to_start_while_an_enabled_esp_has_no_credential(broker: EmbeddedBroker, keys: Keys) -> None:
    env = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "ESPSTREAM_GATEWAY_PORT": str(free_port()),
           "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": keys.mailgun}
    result = run_gateway(env)  # mailgun has its key, every other ESP is enabled with none
    assert result.returncode == 2
    assert "no webhook credentials for amazon_ses, brevo" in result.stderr
    assert "ESPSTREAM_WEBHOOK_SECRET" in result.stderr


@pytest.mark.parametrize(
    "setting, value",
    [
        ("ESPSTREAM_POSTAL_WEBHOOK_KEY", "bm90IGEga2V5"),
        ("ESPSTREAM_ENABLED_ESPS", "mailgun,hotmail"),
        ("ESPSTREAM_AMAZON_SES_TOPIC_ARNS", "not-an-arn"),
        ("ESPSTREAM_WEBHOOK_SECRET_FILE", "/nonexistent/secret"),
    ],
)
def test_refuses_to_start_with_unusable_settings(broker: EmbeddedBroker, setting: str, value: str) -> None:
    env = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "ESPSTREAM_GATEWAY_PORT": str(free_port()),
           "ESPSTREAM_ALLOW_UNAUTHENTICATED": "1", setting: value}
    result = run_gateway(env)
    assert result.returncode == 2, result.stderr
    assert setting.removesuffix("_FILE").removeprefix("ESPSTREAM_") in result.stderr.upper() or "nonexistent" in result.stderr


def test_a_signing_key_alone_protects_its_esp(broker: EmbeddedBroker, keys: Keys, tmp_path: Path) -> None:
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    del env["ESPSTREAM_WEBHOOK_SECRET"]
    env |= {"ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": keys.mailgun, "ESPSTREAM_ENABLED_ESPS": "mailgun"}
    ensure_topics(settings_from_env(env))
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway"], env, tmp_path / "gateway.log").start(port)
    try:
        gateway = Pipeline(env, f"http://127.0.0.1:{port}", ("", ""), broker.bootstrap_servers, service, tmp_path)
        body, content_type, _ = keys.signed("mailgun", secrets.token_hex(8))
        assert gateway.post("mailgun", body, content_type, auth=None).status_code == 200
        assert gateway.post("mailgun", mailgun_json("0" * 32), content_type, auth=None).status_code == 400
        assert gateway.post("postmark", b"{}", auth=None).status_code == 404
        assert raw_values(gateway) == [body]
        assert "mailgun: HMAC-SHA256 signature (Mailgun webhook signing key)" in service.log()
    finally:
        service.stop()


# Settings


def test_settings_from_files_and_alias_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ESPSTREAM_")]:
        monkeypatch.delenv(name)
    (tmp_path / "auth").write_text("a:b,c:d\n")
    (tmp_path / "arns").write_text('["arn:aws:sns:us-east-1:123456789012:ses-events"]')
    monkeypatch.setenv("ESPSTREAM_WEBHOOK_SECRET_FILE", str(tmp_path / "auth"))
    monkeypatch.setenv("ESPSTREAM_AMAZON_SES_TOPIC_ARNS_FILE", str(tmp_path / "arns"))
    monkeypatch.setenv("ESPSTREAM_MAILTRAP_SIGNING_SECRET", "mt")
    monkeypatch.setenv("ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY", "")
    settings = GatewaySettings()
    assert settings.webhook_secret == ["a:b", "c:d"]
    assert settings.amazon_ses_topic_arns == ["arn:aws:sns:us-east-1:123456789012:ses-events"]
    assert settings.mailtrap_tracking_secret == "mt"
    assert settings.mailgun_webhook_signing_key is None  # empty means unset, never an empty key

    monkeypatch.setenv("ESPSTREAM_MAILTRAP_TRACKING_SECRET", "other")
    with pytest.raises(ValueError, match="set only one of"):
        GatewaySettings()


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ESPSTREAM_")]:
        monkeypatch.delenv(name)


def test_a_file_is_read_even_when_its_variable_is_set_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compose file's ``X: ${X:-}`` next to ``X_FILE``: the key must not silently go missing."""
    clean_environment(monkeypatch)
    (tmp_path / "key").write_text("from-the-file\n")
    monkeypatch.setenv("ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY", "")
    monkeypatch.setenv("ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("ESPSTREAM_MAILTRAP_TRACKING_SECRET", "")
    monkeypatch.setenv("ESPSTREAM_MAILTRAP_SIGNING_SECRET", "by-its-other-name")
    settings = GatewaySettings()
    assert settings.mailgun_webhook_signing_key == "from-the-file"
    assert settings.mailtrap_tracking_secret == "by-its-other-name"


def test_the_compose_files_empty_variables_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-compose.yml passes every variable as ``${X:-}``: empty means not configured."""
    clean_environment(monkeypatch)
    for name in ("ESPSTREAM_ENABLED_ESPS", "ESPSTREAM_AMAZON_SES_TOPIC_ARNS", "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY"):
        monkeypatch.setenv(name, "")
    settings = GatewaySettings(webhook_secret="esp:password")
    assert settings.enabled_esps == list(ESP_SLUGS)
    assert settings.amazon_ses_topic_arns == []
    assert settings.mailgun_webhook_signing_key is None


@pytest.mark.parametrize("content", ["", "\n", "  \r\n"])
def test_an_empty_secret_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    """A secret mounted empty is a broken deployment, not "no key": the ESP would lose its signature check."""
    clean_environment(monkeypatch)
    (tmp_path / "key").write_text(content)
    monkeypatch.setenv("ESPSTREAM_WEBHOOK_SECRET", "a:b")
    monkeypatch.setenv("ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY_FILE", str(tmp_path / "key"))
    with pytest.raises(ValueError, match="ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY_FILE.*empty"):
        GatewaySettings()


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty password"):
        GatewaySettings(webhook_secret="esp:")


def test_refused_settings_never_print_the_secret(broker: EmbeddedBroker) -> None:
    secret = "Hunter2-" + secrets.token_hex(8)
    for env in ({"ESPSTREAM_WEBHOOK_SECRET": secret},  # no user: not usable, and must not be echoed
                {"ESPSTREAM_WEBHOOK_SECRET": "a:b", "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": secret + "é"}):
        result = run_gateway({"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                              "ESPSTREAM_GATEWAY_PORT": str(free_port()), **env})
        assert result.returncode == 2, result.stderr
        assert "Hunter2" not in result.stderr + result.stdout
        assert "é" not in result.stderr and "\\xe9" not in result.stderr  # not even the odd character


def test_a_bad_key_is_a_configuration_error_not_a_500_later() -> None:
    with pytest.raises(ConfigurationError, match="ESPSTREAM_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"):
        create_app(GatewaySettings(webhook_secret=["a:b"], sendgrid_tracking_webhook_verification_key="bm9wZQ=="))
    with pytest.raises(ConfigurationError, match="ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY"):
        create_app(GatewaySettings(webhook_secret=["a:b"], mailgun_webhook_signing_key="clé"))


# Amazon SES: the SNS verifier is wired in, with the injected fetch


def test_amazon_ses_uses_the_sns_verifier_and_the_injected_fetch(broker: EmbeddedBroker) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:ses-events"
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    ensure_topics(settings_from_env(env))
    settings = GatewaySettings(**{k.removeprefix("ESPSTREAM_").lower(): v for k, v in env.items()},
                               amazon_ses_topic_arns=topic, enabled_esps="amazon_ses")
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return b"not a certificate"

    cert_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem"
    message = {
        "Type": "Notification", "MessageId": "m-1", "TopicArn": topic, "Message": "{}",
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "SignatureVersion": "1",
        "Signature": base64.b64encode(b"x" * 256).decode(), "SigningCertURL": cert_url,
    }
    body = json.dumps(message).encode()
    headers = {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": "m-1", "x-amz-sns-topic-arn": topic,
               "content-type": "text/plain"}
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)

    async def exchange() -> tuple[int, int]:
        app = create_app(settings, fetch=fetch)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                url = "/webhooks/amazon_ses/tracking/"
                unauthenticated = await client.post(url, content=body, headers=headers)
                forged = await client.post(url, content=body, headers=headers, auth=(user, password))
                return unauthenticated.status_code, forged.status_code

    assert asyncio.run(exchange()) == (401, 400)
    assert fetched == [cert_url]
    assert count_records(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"]) == 0
