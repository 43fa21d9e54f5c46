"""The broker unreachable for 10 s under load: 503s, never a 500 or a 200 without the write, then service resumes.

How the broker goes away: a TCP proxy between every service and a broker of this
test's own is cut (listener closed, so connections are refused; open connections
reset). Stopping the embedded broker is not an option: it keeps records in
memory only, so a restart would lose the very records under test. Freezing it
(SIGSTOP) keeps its data but leaves connections open and silent, which clients
see as a slow broker rather than a gone one; refused and reset connections are
what a crashed broker or a network failure looks like to them.
"""

import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from espstream.embedded import free_port
from espstream.schemas import raw
from tests.faults.helpers import ProxiedBroker, postmark_delivery, run_audit, topics_env
from tests.support.services import Service, eventually, read_topic

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

OUTAGE_SECONDS = 10
CLIENTS = 4


@dataclass
class Answer:
    marker: str  # the message id in the body, unique per request
    phase: str  # before | during | after the outage
    status: int | None  # None: no HTTP answer at all
    request_id: str | None
    retry_after: str | None


class Load:
    """Clients posting webhooks without pause, each body with a unique marker, every answer kept."""

    def __init__(self, url: str, auth: tuple[str, str]):
        self.url, self.auth = url, auth
        self.phase = "before"
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def count(self, phase: str, status: int) -> int:
        return sum(1 for a in list(self.answers) if a.phase == phase and a.status == status)

    def _post(self) -> None:
        with httpx.Client(auth=self.auth, timeout=30) as client:
            while not self._stop.is_set():
                marker, phase = str(uuid.uuid4()), self.phase
                try:
                    response = client.post(
                        f"{self.url}/webhooks/postmark/tracking/",
                        content=postmark_delivery(marker),
                        headers={"Content-Type": "application/json"},
                    )
                except httpx.HTTPError as error:
                    self.errors.append(f"{phase}: {type(error).__name__}: {error}")
                    self.answers.append(Answer(marker, phase, None, None, None))
                    continue
                self.answers.append(
                    Answer(marker, phase, response.status_code, response.headers.get("X-Request-Id"), response.headers.get("Retry-After"))
                )


def test_broker_unreachable_for_ten_seconds_is_503_then_service_resumes(registry_url: str, tmp_path: Path) -> None:
    broker = ProxiedBroker(tmp_path / "tansu.log").start()
    try:
        env = topics_env(broker.bootstrap_servers, registry_url)
        user, password = "esp", secrets.token_urlsafe(16)
        port = free_port()
        env |= {
            "ESPSTREAM_WEBHOOK_SECRET": f"{user}:{password}",
            "ESPSTREAM_GATEWAY_HOST": "127.0.0.1",
            "ESPSTREAM_GATEWAY_PORT": str(port),
            "ESPSTREAM_ACK_TIMEOUT_SECONDS": "2",
        }
        gateway = Service(["gateway"], env, tmp_path / "gateway.log").start(port)
        normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
        try:
            _run_outage(broker, env, f"http://127.0.0.1:{port}", (user, password), gateway, normalizer)
        finally:
            gateway.stop()
            normalizer.stop()
    finally:
        broker.stop()


def _run_outage(broker: ProxiedBroker, env: dict[str, str], url: str, auth, gateway: Service, normalizer: Service) -> None:
    with Load(url, auth) as load:
        eventually(lambda: load.count("before", 200) >= 50, timeout=60)
        load.phase = "during"
        broker.proxy.cut()
        time.sleep(OUTAGE_SECONDS)
        broker.proxy.restore()
        load.phase = "after"
        # The same gateway takes webhooks again once its producer reconnected.
        eventually(lambda: load.count("after", 200) >= 50, timeout=120, interval=0.5)

    answers = load.answers
    by_status: dict[tuple[str, int | None], int] = {}
    for answer in answers:
        by_status[(answer.phase, answer.status)] = by_status.get((answer.phase, answer.status), 0) + 1
    print(f"answers by (phase, status): {dict(sorted(by_status.items(), key=str))}")
    assert not load.errors, load.errors[:5]
    assert {a.status for a in answers} <= {200, 503}  # never a 500
    assert by_status.get(("during", 503), 0) > 0
    assert all(a.retry_after and int(a.retry_after) > 0 for a in answers if a.status == 503)
    assert gateway.process.poll() is None and normalizer.process.poll() is None  # neither restarted

    # Every 200 is a stored record: the request id it answered with, on the raw topic, with its body.
    stored = {
        dict(m.headers())[raw.REQUEST_ID].decode(): m.value()
        for m in read_topic(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], timeout=60)
    }
    accepted = [a for a in answers if a.status == 200]
    not_stored = [a for a in accepted if a.request_id not in stored or a.marker.encode() not in stored[a.request_id]]
    assert not not_stored, f"{len(not_stored)} of {len(accepted)} webhooks answered 200 are not on the raw topic"

    # The normalizer, never restarted, catches up with everything stored, 503'd requests written late included.
    def audited() -> tuple[int, str] | None:
        status, text, _ = run_audit(env)
        return (status, text) if status == 0 else None

    _, text = eventually(audited, timeout=180, interval=2)
    print(f"{len(accepted)} webhooks answered 200, {len(stored)} raw records\n{text}")
