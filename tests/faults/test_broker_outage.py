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
import time
from pathlib import Path

import pytest

from espstream.embedded import free_port
from tests.faults.helpers import Load, ProxiedBroker, assert_every_200_stored, run_audit, topics_env
from tests.support.services import Service, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

OUTAGE_SECONDS = 10


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

    accepted, stored = assert_every_200_stored(answers, broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"])

    # The normalizer, never restarted, catches up with everything stored, 503'd requests written late included.
    def audited() -> tuple[int, str] | None:
        status, text, _ = run_audit(env)
        return (status, text) if status == 0 else None

    _, text = eventually(audited, timeout=180, interval=2)
    print(f"{len(accepted)} webhooks answered 200, {len(stored)} raw records\n{text}")
