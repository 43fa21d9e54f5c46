"""`espstream gateway --workers 2` as a real process tree against the embedded broker."""

import asyncio
import json
import signal
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from espstream.embedded import EmbeddedBroker, free_port, wait_for_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_metrics import scrape, value
from tests.integration.test_pipeline import pipeline_env, postmark_delivery
from tests.support.services import Service, eventually, read_topic

WEBHOOKS = 200


@dataclass
class Gateway:
    env: dict[str, str]
    url: str
    auth: tuple[str, str]
    metrics_url: str
    service: Service

    @property
    def pid(self) -> int:
        assert self.service.process is not None
        return self.service.process.pid

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.service.log().splitlines() if line.startswith("{")]

    def worker_pids(self) -> list[int]:
        """The pids the parent logged once every worker had started."""
        ready = [line for line in self.log_lines() if line["message"].startswith("gateway ready:")]
        return ready[0]["pids"] if ready else []


def start_gateway(broker: EmbeddedBroker, tmp: Path, workers: int = 2) -> Gateway:
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1")
    metrics_port = free_port()
    env.update({
        "ESPSTREAM_GATEWAY_METRICS_PORT": str(metrics_port),
        "ESPSTREAM_GATEWAY_ACCESS_LOG": "1",  # a line per webhook, with the pid of the worker that answered
        "ESPSTREAM_LOG_FORMAT": "json",
    })
    ensure_topics(settings_from_env(env))
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway", "--workers", str(workers)], env, tmp / "gateway.log").start(port)
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    gateway = Gateway(env, f"http://127.0.0.1:{port}", (user, password), f"http://127.0.0.1:{metrics_port}/metrics", service)
    eventually(gateway.worker_pids, timeout=30)
    wait_for_port("127.0.0.1", metrics_port, timeout=10)
    return gateway


@pytest.fixture
def gateway(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Gateway]:
    running = start_gateway(broker, tmp_path)
    yield running
    running.service.stop()


async def post_all(gateway: Gateway, bodies: list[bytes]) -> list[httpx.Response]:
    # A connection per request: the kernel hands each new connection to one worker.
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    async with httpx.AsyncClient(auth=gateway.auth, limits=limits, timeout=30) as client:
        return await asyncio.gather(*(
            client.post(f"{gateway.url}/webhooks/postmark/tracking/", content=body,
                        headers={"Content-Type": "application/json"})
            for body in bodies
        ))


def test_two_workers_share_the_port_store_every_webhook_and_sum_their_metrics(gateway: Gateway) -> None:
    workers = gateway.worker_pids()
    assert len(workers) == 2 and gateway.pid not in workers
    assert {child.pid for child in psutil.Process(gateway.pid).children()} >= set(workers)

    bodies = [postmark_delivery(f"workers-{uuid.uuid4().hex}") for _ in range(WEBHOOKS)]
    responses = asyncio.run(post_all(gateway, bodies))
    assert [r.status_code for r in responses] == [200] * WEBHOOKS

    # Which process answered each webhook, from its access-log line.
    request_ids = {r.headers["X-Request-Id"] for r in responses}

    def served_by() -> dict[str, int]:
        lines = [line for line in gateway.log_lines() if line.get("request_id") in request_ids]
        return {line["request_id"]: line["pid"] for line in lines if line["logger"] == "espstream.gateway.access"}

    pids = eventually(lambda: (found := served_by()) and len(found) == WEBHOOKS and found, timeout=10)
    assert set(pids.values()) == set(workers), "both workers must have answered some webhooks"

    # Every accepted webhook is on the raw topic, once.
    stored = [record.value() for record in read_topic(gateway.env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], gateway.env["ESPSTREAM_RAW_TOPIC"])]
    assert sorted(stored) == sorted(bodies)

    # One metrics port for the whole gateway, summing over both workers.
    samples = scrape(gateway.metrics_url)
    assert value(samples, "espstream_gateway_requests_total", esp="postmark", status="200", reason="stored") == WEBHOOKS
    assert value(samples, "espstream_gateway_broker_ack_seconds_count") == WEBHOOKS
    assert value(samples, "espstream_gateway_body_bytes_count", esp="postmark") == WEBHOOKS
    assert value(samples, "espstream_gateway_body_bytes_sum", esp="postmark") == sum(map(len, bodies))
    assert value(samples, "espstream_gateway_requests_in_flight") == 0
    # The webhook port serves no metrics.
    assert httpx.get(f"{gateway.url}/metrics").status_code == 404


def test_sigterm_to_the_parent_stops_every_worker_cleanly(gateway: Gateway) -> None:
    workers = [psutil.Process(pid) for pid in gateway.worker_pids()]
    assert asyncio.run(post_all(gateway, [postmark_delivery("before-stop")]))[0].status_code == 200
    metrics_dir = next(Path(p.environ()["PROMETHEUS_MULTIPROC_DIR"]) for p in workers)
    assert metrics_dir.is_dir()

    assert gateway.service.process is not None
    gateway.service.process.send_signal(signal.SIGTERM)
    assert gateway.service.process.wait(20) == 0
    for worker in workers:
        assert not worker.is_running()
    log = gateway.service.log()
    assert log.count("Application shutdown complete") == 2  # each worker shut its app (and producer) down
    assert "gateway: SIGTERM, stopping 2 worker processes" in log
    assert not metrics_dir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(gateway.env["ESPSTREAM_GATEWAY_PORT"])), timeout=2)


def test_a_worker_that_dies_stops_the_gateway_with_status_1(gateway: Gateway) -> None:
    dead, other = (psutil.Process(pid) for pid in gateway.worker_pids())
    dead.kill()
    assert gateway.service.process is not None
    assert gateway.service.process.wait(20) == 1
    assert not other.is_running()
    assert f"gateway worker {dead.pid} exited with status -9; stopping the gateway" in gateway.service.log()
