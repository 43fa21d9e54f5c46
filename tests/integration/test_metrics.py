"""Prometheus metrics of real gateway, normalizer and consumer processes, read as Prometheus reads them."""

import base64
import json
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from espstream.embedded import EmbeddedBroker, free_port, wait_for_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_pipeline import pipeline_env, postmark_delivery
from tests.support.services import Service, eventually
from tests.unit.gateway.test_signatures import mailgun_json

MAX_BODY_BYTES = 65536
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Stack:
    """A gateway, a normalizer and a consumer group member, each a real process."""

    env: dict[str, str]
    url: str
    auth: tuple[str, str]
    gateway_metrics: str
    normalizer_metrics: str
    consumer_metrics: str
    group: str
    tmp: Path
    services: dict[str, Service] = field(default_factory=dict)

    def post(self, esp: str, body: bytes, content_type: str = "application/json", **kwargs) -> httpx.Response:
        kwargs.setdefault("auth", self.auth)
        headers = kwargs.pop("headers", None) or {"Content-Type": content_type}
        return httpx.post(f"{self.url}/webhooks/{esp}/tracking/", content=body, headers=headers, timeout=30, **kwargs)

    def log(self, name: str) -> str:
        return self.services[name].log()

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


def start_stack(broker: EmbeddedBroker, registry_url: str, tmp: Path, **settings: str) -> Stack:
    """Gateway, normalizer and `consume tests.support.receivers_for_consumers` on fresh topics, metrics on free ports."""
    env = pipeline_env(broker.bootstrap_servers, registry_url)
    group = f"metrics-{uuid.uuid4().hex[:8]}"
    gateway_metrics_port, normalizer_port, consumer_port = free_port(), free_port(), free_port()
    env.update(
        {
            "ESPSTREAM_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "ESPSTREAM_BODY_TIMEOUT_SECONDS": "1",
            "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": secrets.token_hex(16),
            # Statistics (hence lag) twice a second rather than every 5 s.
            "ESPSTREAM_KAFKA_CONFIG": json.dumps({"statistics.interval.ms": 500}),
            "ESPSTREAM_GATEWAY_METRICS_PORT": str(gateway_metrics_port),
            "ESPSTREAM_NORMALIZER_METRICS_PORT": str(normalizer_port),
            "ESPSTREAM_CONSUMER_METRICS_PORT": str(consumer_port),
            "ESPSTREAM_CONSUMER_RETRY_BACKOFF_SECONDS": "0.05",
            "ESPSTREAM_CONSUMER_MAX_ATTEMPTS": "3",
            "RECEIVED_EVENTS_FILE": str(tmp / "received.jsonl"),
            "RECEIVER_BROKEN_FILE": str(tmp / "broken.txt"),
            **settings,
        }
    )
    ensure_topics(settings_from_env({name: v for name, v in env.items() if name != "ESPSTREAM_KAFKA_CONFIG"}))
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    gateway_port = int(env["ESPSTREAM_GATEWAY_PORT"])
    stack = Stack(
        env,
        f"http://127.0.0.1:{gateway_port}",
        (user, password),
        f"http://127.0.0.1:{gateway_metrics_port}/metrics",
        f"http://127.0.0.1:{normalizer_port}/metrics",
        f"http://127.0.0.1:{consumer_port}/metrics",
        group,
        tmp,
    )
    stack.services["gateway"] = Service(["gateway"], env, tmp / "gateway.log").start()
    stack.services["normalizer"] = Service(["normalize"], env, tmp / "normalizer.log").start()
    stack.services["consumer"] = Service(["consume", "tests.support.receivers_for_consumers", "--group", group], env, tmp / "consumer.log").start()
    for port in (gateway_port, gateway_metrics_port, normalizer_port, consumer_port):
        wait_for_port("127.0.0.1", port, timeout=30)
    return stack


def scrape(url: str, **headers: str) -> Samples:
    response = httpx.get(url, headers=headers, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def slow_body(stack: Stack) -> bytes:
    """A request whose body never finishes: the gateway's answer (408 after ESPSTREAM_BODY_TIMEOUT_SECONDS)."""
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as connection:
        credentials = base64.b64encode(":".join(stack.auth).encode())
        connection.sendall(
            b"POST /webhooks/postmark/tracking/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Basic " + credentials + b"\r\nContent-Length: 100\r\n\r\n{\"slow\": "
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@dataclass
class Sent:
    """What the module's stack was sent, and the ids of what should fail downstream."""

    statuses: list[int]
    broken_message_id: str
    dead_letter_request_id: str


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(broker, registry_url, tmp_path_factory.mktemp("metrics"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sent(stack: Stack) -> Sent:
    broken = f"broken-{uuid.uuid4().hex}"
    (stack.tmp / "broken.txt").write_text(broken + "\n")
    unknown_type = json.dumps({"RecordType": "BrandNewRecordType", "MessageID": f"new-{uuid.uuid4().hex}", "Recipient": "bob@example.com"})
    responses = [
        stack.post("postmark", postmark_delivery(f"ok-{uuid.uuid4().hex}")),
        stack.post("postmark", postmark_delivery(broken)),
        stack.post("postmark", unknown_type.encode()),
        stack.post("postmark", b"this is not JSON"),  # stored, then dead-lettered by the normalizer
        stack.post("postmark", postmark_delivery("x"), auth=("esp", "wrong")),
        stack.post("no-such-esp", postmark_delivery("x")),
        stack.post("postmark", b"[" + b" " * MAX_BODY_BYTES + b"]"),
        stack.post("postmark", b"{}", headers=[("Content-Type", "application/json"), ("Content-Type", "text/plain")]),
        stack.post("mailgun", mailgun_json(secrets.token_hex(16))),  # signed with another key
    ]
    statuses = [response.status_code for response in responses]
    assert slow_body(stack).startswith(b"HTTP/1.1 408 ")
    return Sent(statuses + [408], broken, responses[3].headers["X-Request-Id"])


def test_the_gateway_counts_every_answer_by_esp_status_and_reason(stack: Stack, sent: Sent) -> None:
    assert sent.statuses == [200, 200, 200, 200, 401, 404, 413, 400, 400, 408]
    samples = scrape(stack.gateway_metrics)
    requests = series(samples, "espstream_gateway_requests_total")
    assert requests == {
        frozenset({"esp": "postmark", "status": "200", "reason": "stored"}.items()): 4,
        frozenset({"esp": "postmark", "status": "401", "reason": "auth"}.items()): 1,
        frozenset({"esp": "other", "status": "404", "reason": "unknown_esp"}.items()): 1,
        frozenset({"esp": "postmark", "status": "413", "reason": "too_large"}.items()): 1,
        frozenset({"esp": "postmark", "status": "400", "reason": "content_type"}.items()): 1,
        frozenset({"esp": "mailgun", "status": "400", "reason": "signature"}.items()): 1,
        frozenset({"esp": "postmark", "status": "408", "reason": "too_slow"}.items()): 1,
    }
    # Bodies read whole: the four stored and the mailgun one whose signature failed.
    assert value(samples, "espstream_gateway_body_bytes_count", esp="postmark") == 4
    assert value(samples, "espstream_gateway_body_bytes_count", esp="mailgun") == 1
    assert value(samples, "espstream_gateway_body_bytes_sum", esp="mailgun") > 0
    assert value(samples, "espstream_gateway_broker_ack_seconds_count") == 4
    assert value(samples, "espstream_gateway_requests_in_flight") == 0


def test_the_gateway_metrics_are_not_on_the_webhook_port(stack: Stack, sent: Sent) -> None:
    # Not even to a local client: a proxy in front (nginx with a plain proxy_pass) makes any client local.
    assert httpx.get(f"{stack.url}/metrics").status_code == 404
    assert httpx.get(f"{stack.url}/metrics", headers={"Via": "1.1 nginx"}).status_code == 404
    assert "/metrics" not in httpx.get(f"{stack.url}/openapi.json").json()["paths"]


def test_every_answer_carries_a_request_id(stack: Stack, sent: Sent) -> None:
    for response in (stack.post("postmark", b"{}", auth=("esp", "wrong")), stack.post("no-such-esp", b"{}")):
        assert len(response.headers["X-Request-Id"]) == 32


def test_the_normalizer_counts_records_events_by_type_dead_letters_and_the_unknown_share(stack: Stack, sent: Sent) -> None:
    def normalized() -> Samples | None:
        samples = scrape(stack.normalizer_metrics)
        return samples if value(samples, "espstream_normalizer_records_total", esp="postmark") == 4 else None

    samples = eventually(normalized, timeout=60)
    assert series(samples, "espstream_normalizer_events_total") == {
        frozenset({"esp": "postmark", "event_type": "delivered"}.items()): 2,
        frozenset({"esp": "postmark", "event_type": "unknown"}.items()): 1,
    }
    assert series(samples, "espstream_normalizer_dead_letters_total") == {
        frozenset({"esp": "postmark", "stage": "normalize", "error_class": "MalformedPayload"}.items()): 1,
    }
    assert value(samples, "espstream_normalizer_unknown_event_share", esp="postmark") == pytest.approx(1 / 3)
    assert value(samples, "espstream_normalizer_latency_seconds_count") >= 1
    assert value(samples, "espstream_normalizer_batch_seconds_count") >= 1
    assert value(samples, "espstream_normalizer_batches_retried_total") == 0


def test_the_normalizer_reports_its_groups_lag_per_partition(stack: Stack, sent: Sent) -> None:
    group = stack.env["ESPSTREAM_NORMALIZER_GROUP"]

    def caught_up() -> dict | None:
        lags = {
            dict(labels)["partition"]: lag
            for labels, lag in series(scrape(stack.normalizer_metrics), "espstream_consumer_lag_records").items()
            if dict(labels)["group"] == group and dict(labels)["topic"] == stack.env["ESPSTREAM_RAW_TOPIC"]
        }
        return lags if lags and all(lag == 0 for lag in lags.values()) else None

    lags = eventually(caught_up, timeout=30)
    assert set(lags) == {"0", "1", "2"}  # every partition, committed on or not


def test_the_consumer_counts_handled_events_failures_retries_and_dead_letters(stack: Stack, sent: Sent) -> None:
    group = stack.group
    record = "tests.support.receivers_for_consumers.record"

    def finished() -> Samples | None:
        samples = scrape(stack.consumer_metrics)
        done = sum(v for labels, v in series(samples, "espstream_consumer_events_total").items() if dict(labels)["group"] == group)
        return samples if done == 3 else None

    samples = eventually(finished, timeout=60)
    assert value(samples, "espstream_consumer_events_total", group=group, outcome="handled") == 2
    assert value(samples, "espstream_consumer_events_total", group=group, outcome="dead_lettered") == 1
    assert value(samples, "espstream_consumer_events_total", group=group, outcome="duplicate") == 0
    assert series(samples, "espstream_consumer_receiver_failures_total") == {frozenset({"group": group, "receiver": record}.items()): 3}
    assert series(samples, "espstream_consumer_retries_total") == {frozenset({"group": group, "receiver": record}.items()): 2}
    assert series(samples, "espstream_consumer_dead_letters_total") == {frozenset({"group": group, "receiver": record}.items()): 1}
    assert value(samples, "espstream_consumer_event_seconds_count", group=group) == 3
    assert value(samples, "espstream_consumer_event_age_seconds_count", group=group) == 3
    # The group's lag on each partition of the normalized topic: nothing left once committed.
    def caught_up() -> bool:
        lags = series(scrape(stack.consumer_metrics), "espstream_consumer_lag_records")
        mine = {dict(labels)["partition"]: lag for labels, lag in lags.items() if dict(labels)["group"] == group}
        return set(mine) == {"0", "1", "2"} and not any(mine.values())

    eventually(caught_up, timeout=30)


def test_the_gateway_can_serve_its_metrics_on_a_port_of_their_own(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> None:
    env = pipeline_env(broker.bootstrap_servers, registry_url)
    metrics_port = free_port()
    env["ESPSTREAM_GATEWAY_METRICS_PORT"] = str(metrics_port)
    ensure_topics(settings_from_env(env))
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    gateway = Service(["gateway"], env, tmp_path / "gateway.log").start(port)
    try:
        wait_for_port("127.0.0.1", metrics_port, timeout=30)
        user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
        assert httpx.post(f"http://127.0.0.1:{port}/webhooks/postmark/tracking/", content=b"{}", auth=(user, password)).status_code == 200
        # The webhook port no longer answers /metrics, even locally; the metrics port does.
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        samples = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert value(samples, "espstream_gateway_requests_total", esp="postmark", status="200", reason="stored") == 1
        # Only /metrics there: the gateway's probes are on its webhook port.
        for path in ("/", "/healthz", "/metrics/x"):
            assert httpx.get(f"http://127.0.0.1:{metrics_port}{path}").status_code == 404
    finally:
        gateway.stop()
