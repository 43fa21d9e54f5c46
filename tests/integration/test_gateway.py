"""The gateway over real HTTP against a real broker: status codes, the raw record, failing closed."""

import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_pipeline import Pipeline, pipeline_env
from tests.support.services import Service, count_records, eventually, read_topic

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def gateway(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """A gateway alone (no normalizer), with a small body limit."""
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    env["ESPSTREAM_MAX_BODY_BYTES"] = str(BODY_LIMIT)
    ensure_topics(settings_from_env(env))
    tmp = tmp_path_factory.mktemp("gateway")
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway"], env, tmp / "gateway.log").start(port)
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    yield Pipeline(env, f"http://127.0.0.1:{port}", (user, password), broker.bootstrap_servers, service, tmp)
    service.stop()


def test_the_raw_record_is_the_exact_body_with_request_metadata(gateway: Pipeline) -> None:
    body = b'{"RecordType": "Open", "note": "\xc3\xa9t\xc3\xa9", "id": "' + uuid.uuid4().hex.encode() + b'"}  \n'
    response = gateway.post(
        "sendgrid", body, params={"source": "test"}, headers={"Cookie": "session=1", "X-Custom": "kept"}
    )
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]

    [record] = [m for m in read_topic(gateway.bootstrap_servers, gateway.topic("raw")) if m.value() == body]
    headers = dict(record.headers())
    assert headers["esp"] == b"sendgrid"
    assert headers["request-id"] == request_id.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["query-string"] == b"source=test"
    assert headers["http-x-custom"] == b"kept"
    assert headers["received-at"].endswith(b"+00:00")
    names = {name for name, _ in record.headers()}
    assert not {"http-authorization", "http-cookie"} & names


def test_unknown_esp_is_404_and_writes_nothing(gateway: Pipeline) -> None:
    before = count_records(gateway.bootstrap_servers, gateway.topic("raw"))
    assert gateway.post("hotmail", b"{}").status_code == 404
    assert count_records(gateway.bootstrap_servers, gateway.topic("raw")) == before


def test_head_probe_is_200_and_other_methods_are_405(gateway: Pipeline) -> None:
    url = f"{gateway.url}/webhooks/mailgun/tracking/"
    assert httpx.head(url).status_code == 200
    assert httpx.get(url, auth=gateway.auth).status_code == 405
    assert httpx.put(url, auth=gateway.auth, content=b"{}").status_code == 405


def test_url_without_trailing_slash_is_accepted(gateway: Pipeline) -> None:
    response = httpx.post(f"{gateway.url}/webhooks/postmark/tracking", content=b"{}", auth=gateway.auth)
    assert response.status_code == 200


def test_body_over_the_limit_is_413_and_writes_nothing(gateway: Pipeline) -> None:
    before = count_records(gateway.bootstrap_servers, gateway.topic("raw"))
    assert gateway.post("postmark", b"x" * (BODY_LIMIT + 1)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"y" * 1000

    assert gateway.post("postmark", chunks()).status_code == 413
    assert gateway.post("postmark", b"z" * BODY_LIMIT).status_code == 200
    assert count_records(gateway.bootstrap_servers, gateway.topic("raw")) == before + 1


def test_health_readiness_and_docs(gateway: Pipeline) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200
    docs = httpx.get(f"{gateway.url}/openapi.json").json()
    assert "/webhooks/{esp}/tracking/" in docs["paths"]
    assert gateway.env["ESPSTREAM_WEBHOOK_SECRET"].split(":")[1] not in httpx.get(f"{gateway.url}/openapi.json").text


def test_gateway_refuses_to_start_without_credentials(broker: EmbeddedBroker) -> None:
    env = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "ESPSTREAM_GATEWAY_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "espstream", "gateway"],
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("ESPSTREAM_")} | env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "ESPSTREAM_WEBHOOK_SECRET" in result.stderr


def test_broker_down_is_503_never_200_and_recovers(tmp_path) -> None:
    """Its own broker: stopping it must not disturb the other tests."""
    port = free_port()
    broker = EmbeddedBroker(port, log_path=tmp_path / "tansu.log").start()
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    env["ESPSTREAM_ACK_TIMEOUT_SECONDS"] = "2"
    ensure_topics(settings_from_env(env))
    gateway_port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway"], env, tmp_path / "gateway.log").start(gateway_port)
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    gateway = Pipeline(env, f"http://127.0.0.1:{gateway_port}", (user, password), broker.bootstrap_servers, service, tmp_path)
    try:
        assert gateway.post("postmark", b'{"before": 1}').status_code == 200

        broker.stop()
        for attempt in range(3):
            response = gateway.post("postmark", b'{"during": %d}' % attempt)
            assert response.status_code == 503
            assert int(response.headers["Retry-After"]) > 0
        assert httpx.get(f"{gateway.url}/readyz", timeout=10).status_code == 503

        broker = EmbeddedBroker(port, log_path=tmp_path / "tansu.log").start()
        ensure_topics(settings_from_env(env))  # the embedded broker keeps nothing across a restart
        eventually(lambda: gateway.post("postmark", b'{"after": 1}').status_code == 200, timeout=60, interval=1)
        records = [m.value() for m in read_topic(broker.bootstrap_servers, gateway.topic("raw"))]
        assert b'{"after": 1}' in records
    finally:
        service.stop()
        broker.stop()
