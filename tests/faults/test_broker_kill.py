"""The durable embedded broker and its storage SIGKILLed, then started again on the same data.

Under load at the gateway: only 200 and 503 are answered, every 200 is on the
raw topic, and the audit finds nothing missing. During normalizing: the
normalizer, never restarted, finishes the range; the audit finds nothing
missing. And the whole stack stopped and started again: a replay over the
whole range gives the events already written.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from espstream.embedded import EmbeddedBroker, free_port
from tests.faults.helpers import (
    Load,
    assert_every_200_stored,
    committed_total,
    postmark_delivery,
    produce_raw,
    raw_ends,
    run_audit,
    sendgrid_batch,
    topics_env,
)
from tests.support.services import Service, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

JSON = "application/json"
DOWN_SECONDS = 3


def ready(port: int) -> bool:
    """Whether a service's /readyz on its metrics port says it holds partitions and polls."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def audit_passes(env: dict[str, str], timeout: float) -> str:
    """The audit's report once it finds every outcome; its last report in the failure otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        # Exit 2 (the audit could not read a topic to its end) is retried too: a restarted broker may
        # take a while to serve every partition again; only what is still true at the deadline counts.
        done = subprocess.run([sys.executable, "-m", "espstream", "audit"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        if done.returncode == 0:
            return done.stdout
        assert time.monotonic() < deadline, f"the audit still fails after {timeout:.0f} s:\n{done.stdout}{done.stderr}"
        time.sleep(2)


def test_broker_killed_under_gateway_load_loses_no_accepted_webhook(
    durable_broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = topics_env(durable_broker.bootstrap_servers, registry_url) | durable_broker.client_env()
    user, password = "esp", secrets.token_urlsafe(16)
    port, metrics_port = free_port(), free_port()
    env |= {
        "ESPSTREAM_WEBHOOK_SECRET": f"{user}:{password}",
        "ESPSTREAM_GATEWAY_HOST": "127.0.0.1",
        "ESPSTREAM_GATEWAY_PORT": str(port),
        "ESPSTREAM_ACK_TIMEOUT_SECONDS": "2",
        "ESPSTREAM_NORMALIZER_METRICS_PORT": str(metrics_port),
    }
    gateway = Service(["gateway"], env, tmp_path / "gateway.log").start(port)
    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    try:
        # Killed while the normalizer's group is between generations, Tansu 0.6.0 restores the
        # rebalance and waits on the dead leader (README: The embedded broker's data): the crash
        # under test is one in steady state, so the normalizer holds its partitions first.
        eventually(lambda: ready(metrics_port), timeout=60)
        with Load(f"http://127.0.0.1:{port}", (user, password)) as load:
            eventually(lambda: load.count("before", 200) >= 50, timeout=60)
            load.phase = "during"
            durable_broker.kill()  # the broker and SeaweedFS, SIGKILL: no flush, no goodbye
            time.sleep(DOWN_SECONDS)
            durable_broker.start()
            load.phase = "after"
            eventually(lambda: load.count("after", 200) >= 50, timeout=120, interval=0.5)
        assert gateway.process.poll() is None and normalizer.process.poll() is None  # neither restarted
    finally:
        gateway.stop()
        normalizer.stop()
    by_status: dict[tuple[str, int | None], int] = {}
    for answer in load.answers:
        by_status[(answer.phase, answer.status)] = by_status.get((answer.phase, answer.status), 0) + 1
    print(f"answers by (phase, status): {dict(sorted(by_status.items(), key=str))}")
    assert not load.errors, load.errors[:5]
    assert {answer.status for answer in load.answers} <= {200, 503}
    accepted, stored = assert_every_200_stored(load.answers, durable_broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"])

    # A normalizer started afresh finishes what the first one had not: the audit finds every outcome.
    normalizer = Service(["normalize"], env, tmp_path / "normalizer-after.log").start()
    try:
        text = audit_passes(env, timeout=180)
    finally:
        normalizer.stop()
    print(f"{len(accepted)} webhooks answered 200, {len(stored)} raw records\n{text}")


def test_broker_killed_while_normalizing_loses_no_raw_record(
    durable_broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = topics_env(durable_broker.bootstrap_servers, registry_url) | durable_broker.client_env()
    batches, per_batch, singles, broken = 3_000, 2, 1_000, 20
    webhooks = [
        *(("sendgrid", sendgrid_batch(per_batch), JSON, None) for _ in range(batches)),
        *(("postmark", postmark_delivery(f"single-{n}"), JSON, None) for n in range(singles)),
        *(("postmark", b"{broken json %d" % n, JSON, None) for n in range(broken)),
    ]
    written = produce_raw(durable_broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], webhooks)
    total = raw_ends(written)
    assert total == len(webhooks)

    def progress() -> int:
        try:
            return committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], env["ESPSTREAM_RAW_TOPIC"])
        except Exception:  # the broker is down or starting: no reading yet
            return -1

    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    try:
        eventually(lambda: progress() >= 0.3 * total, timeout=120, interval=0.05)
        durable_broker.kill()
        killed_at = time.monotonic()
        time.sleep(DOWN_SECONDS)
        durable_broker.start()
        eventually(lambda: progress() == total, timeout=240, interval=0.5)
        print(f"broker down {time.monotonic() - killed_at:.1f} s; normalizer finished")
        assert normalizer.process.poll() is None  # it rode the restart out
    finally:
        normalizer.stop()

    status, text, _ = run_audit(env)
    _, _, report = run_audit(env, "--json")
    print(text)
    assert status == 0, text
    totals = report["totals"]
    assert (totals["missing"], totals["raw_records"]) == (0, total)
    assert totals["events"] == batches * per_batch + singles
    assert totals["dead_lettered"] == broken


def test_a_stopped_and_restarted_stack_replays_to_the_same_events(
    durable_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    registry_port = free_port()

    def start_registry() -> Service:
        settings = {**durable_broker.client_env(), "ESPSTREAM_REGISTRY_HOST": "127.0.0.1", "ESPSTREAM_REGISTRY_PORT": str(registry_port)}
        return Service(["registry"], settings, tmp_path / "registry.log").start(registry_port)

    registry = start_registry()
    env = topics_env(durable_broker.bootstrap_servers, f"http://127.0.0.1:{registry_port}") | durable_broker.client_env()
    webhooks = [
        *(("sendgrid", sendgrid_batch(3), JSON, None) for _ in range(200)),
        *(("postmark", postmark_delivery(f"restart-{n}"), JSON, None) for n in range(200)),
        *(("postmark", b"{broken json %d" % n, JSON, None) for n in range(10)),
    ]
    total = raw_ends(produce_raw(durable_broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], webhooks))
    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    try:
        eventually(lambda: committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], env["ESPSTREAM_RAW_TOPIC"]) == total,
                   timeout=180, interval=0.5)  # fmt: skip
    finally:
        normalizer.stop()
    registry.stop()
    durable_broker.stop()

    durable_broker.start()
    registry = start_registry()
    try:
        diff = subprocess.run(
            [sys.executable, "-m", "espstream", "replay", "--diff", "--json"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        registry.stop()
    assert diff.returncode == 0, diff.stderr
    report = json.loads(diff.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=1)[:2000])
    assert report["raw_records"] == total
    assert not report["differs"]
    assert report["esps"]["sendgrid"]["unchanged"] == 200 * 3
    assert report["esps"]["postmark"]["unchanged"] == 200
    for esp in report["esps"].values():
        assert (esp["changed"], esp["appeared"], esp["disappeared"]) == (0, 0, 0)
