"""Two consumer groups on one topic: a slow receiver in one does not hold the other back."""

import uuid
from pathlib import Path

import pytest

from espstream.embedded import EmbeddedBroker
from espstream.normalizer.core import normalize
from tests.faults.helpers import committed_total, lines, postmark_delivery, produce_raw, raw_ends, topics_env
from tests.support.services import Service, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

EVENTS = 300
SLOW_SECONDS_PER_EVENT = 0.5


def test_a_slow_group_does_not_slow_another_group(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> None:
    env = topics_env(broker.bootstrap_servers, registry_url)
    bodies = [postmark_delivery(str(uuid.uuid4())) for _ in range(EVENTS)]
    written = produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], [("postmark", b, "application/json", None) for b in bodies])
    expected = {normalize("postmark", body, "application/json")[0].dedupe_id for body in bodies}
    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    fast_file, slow_file = tmp_path / "fast.txt", tmp_path / "slow.txt"
    suffix = uuid.uuid4().hex[:8]
    slow = Service(
        ["consume", "tests.faults.receivers", "--group", f"slow-{suffix}"],
        {
            **env,
            "FAULTS_RECEIVED_FILE": str(slow_file),
            "FAULTS_RECEIVER_DELAY": str(SLOW_SECONDS_PER_EVENT),
            # Little read ahead, so that a stop (which finishes what was read) is quick.
            "ESPSTREAM_CONSUMER_BATCH_SIZE": "10",
        },
        tmp_path / "slow.log",
    )
    fast = Service(
        ["consume", "tests.faults.receivers", "--group", f"fast-{suffix}"],
        {**env, "FAULTS_RECEIVED_FILE": str(fast_file)},
        tmp_path / "fast.log",
    )
    try:
        eventually(lambda: committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], env["ESPSTREAM_RAW_TOPIC"]) == raw_ends(written), timeout=120)
        slow.start()
        eventually(lambda: lines(slow_file), timeout=60)  # the slow group is at work first
        fast.start()
        eventually(lambda: expected <= set(lines(fast_file)), timeout=120, interval=0.2)
        slow_done = len(set(lines(slow_file)))
        print(f"fast group: all {EVENTS} events handled while the slow group had handled {slow_done}")
        assert slow_done < EVENTS // 2  # still far behind: the fast group did not wait for it
        assert slow.process.poll() is None
        eventually(lambda: len(set(lines(slow_file))) > slow_done, timeout=30)  # and still making progress
    finally:
        fast.stop()
        slow.stop()
        normalizer.stop()
