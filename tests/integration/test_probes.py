"""Kubernetes probes on the metrics port of real normalizer and consumer processes, over real HTTP.

``/healthz``: the process is alive. ``/readyz``: 200 once partitions are assigned
and the poll loop polled recently, else 503; the body says what was seen. Any
other path but ``/metrics`` is a 404.
"""

import json
import os
import uuid
from pathlib import Path

import httpx
import pytest

from espstream.embedded import EmbeddedBroker, free_port, wait_for_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_consumers import event, produce
from tests.support.services import Service, eventually, own_topics

SLOW_RECEIVER = '''
import os
import time

from espstream.consumers import receiver, tracking


@receiver(tracking)
def slow(sender, event, esp_name, **kwargs):
    time.sleep(float(os.environ["RECEIVER_SECONDS"]))
'''


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> dict[str, str]:
    """One partition per topic: of two members of a group, one has nothing assigned."""
    settings = own_topics(broker.bootstrap_servers, registry_url, partitions=1)
    ensure_topics(settings_from_env(settings))
    (tmp_path / "slow_receivers.py").write_text(SLOW_RECEIVER)
    return {**os.environ, **settings, "PYTHONPATH": str(tmp_path), "RECEIVER_SECONDS": "0"}


def probe(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def ready(port: int) -> dict | None:
    response = probe(port, "/readyz")
    return response.json() if response.status_code == 200 else None


def test_the_normalizer_is_alive_at_once_and_ready_once_it_has_partitions(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    normalizer = Service(["normalize"], {**env, "ESPSTREAM_NORMALIZER_METRICS_PORT": str(port)}, tmp_path / "n.log").start(port)
    try:
        assert probe(port, "/healthz").status_code == 200
        body = eventually(lambda: ready(port))
        assert body["assigned"] == {env["ESPSTREAM_RAW_TOPIC"]: [0]}
        assert 0 <= body["last_poll_age_seconds"] < 5
        assert probe(port, "/metrics").headers["content-type"].startswith("text/plain")
        assert "espstream_normalizer" in probe(port, "/metrics").text
        for path in ("/", "/health", "/readyz/x"):
            assert probe(port, path).status_code == 404
    finally:
        assert normalizer.stop() == 0, normalizer.log()


def consumer(env: dict[str, str], tmp_path: Path, group: str, port: int, **settings: str) -> Service:
    args = ["consume", "slow_receivers", "--group", group]
    return Service(args, {**env, "ESPSTREAM_CONSUMER_METRICS_PORT": str(port), **settings}, tmp_path / f"c{port}.log").start(port)


def test_a_member_without_partitions_is_not_ready_until_it_gets_them(env: dict[str, str], tmp_path: Path) -> None:
    group = f"probes-{uuid.uuid4().hex[:8]}"
    first_port, second_port = free_port(), free_port()
    first = consumer(env, tmp_path, group, first_port)
    second = None
    try:
        eventually(lambda: ready(first_port))
        second = consumer(env, tmp_path, group, second_port)
        assert probe(second_port, "/healthz").json() == {"alive": True}
        # Once the second has joined (the partition handed out again), one member has it; the other answers 503.
        def settled() -> bool:
            handed_out = sum(member.log().count('"assigned [0]"') for member in (first, second))  # type: ignore[union-attr]
            return handed_out == 2 and [ready(first_port), ready(second_port)].count(None) == 1

        eventually(settled, timeout=60)
        idle_port = second_port if ready(first_port) else first_port
        idle = probe(idle_port, "/readyz")
        assert idle.status_code == 503 and idle.json()["assigned"] == {} and idle.json()["ready"] is False
        owner = first if idle_port == second_port else second
        assert owner.stop() == 0
        eventually(lambda: ready(idle_port), timeout=60)
    finally:
        for member in (first, second):
            if member is not None:
                member.stop()


def test_a_poll_loop_held_longer_than_allowed_is_not_ready_then_ready_again(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    member = consumer(
        env, tmp_path, f"probes-{uuid.uuid4().hex[:8]}", port,
        RECEIVER_SECONDS="4", ESPSTREAM_READY_MAX_POLL_AGE_SECONDS="1",
        # Statistics (hence lag in the body) twice a second.
        ESPSTREAM_KAFKA_CONFIG=json.dumps({"statistics.interval.ms": 500}),
    )
    try:
        eventually(lambda: ready(port))
        produce(env, [event(str(uuid.uuid4()), 0)])  # concurrency 1: the polling thread calls the receiver

        def held() -> dict | None:
            response = probe(port, "/readyz")
            return response.json() if response.status_code == 503 else None

        body = held() or eventually(held, timeout=10, interval=0.1)
        assert body["last_poll_age_seconds"] > 1 and body["max_poll_age_seconds"] == 1
        assert body["assigned"] == {env["ESPSTREAM_NORMALIZED_TOPIC"]: [0]}
        assert probe(port, "/healthz").status_code == 200  # alive all along
        eventually(lambda: ready(port), timeout=10)
        eventually(lambda: (ready(port) or {}).get("lag") == {f"{env['ESPSTREAM_NORMALIZED_TOPIC']}[0]": 0}, timeout=10)
    finally:
        assert member.stop() == 0, member.log()
