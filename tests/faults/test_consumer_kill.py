"""A consumer process SIGKILLed in the middle of a batch: after a restart every event is handled, none lost."""

import uuid
from pathlib import Path

import pytest

from espstream.embedded import EmbeddedBroker
from espstream.normalizer.core import normalize
from tests.faults.helpers import committed_total, lines, postmark_delivery, produce_raw, raw_ends, topics_env
from tests.support.services import Service, eventually

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

EVENTS = 2000
STALL_AT = 600  # the event the receiver hangs on until the kill


def test_consumer_killed_mid_batch_gets_the_unfinished_events_again(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = topics_env(broker.bootstrap_servers, registry_url)
    bodies = [postmark_delivery(str(uuid.uuid4())) for _ in range(EVENTS)]
    written = produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], [("postmark", b, "application/json", None) for b in bodies])
    expected = {normalize("postmark", body, "application/json")[0].dedupe_id for body in bodies}
    stalled = normalize("postmark", bodies[STALL_AT], "application/json")[0]

    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    group = f"billing-{uuid.uuid4().hex[:8]}"
    received = tmp_path / "received.txt"
    flag = tmp_path / "stalled"
    consumer_env = {
        **env,
        "FAULTS_RECEIVED_FILE": str(received),
        "FAULTS_STALL_MESSAGE_ID": stalled.message_id or "",
        "FAULTS_STALL_FLAG": str(flag),
    }
    command = ["consume", "tests.faults.receivers", "--group", group]
    consumer = Service(command, consumer_env, tmp_path / "consumer.log").start()
    try:
        eventually(lambda: committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], env["ESPSTREAM_RAW_TOPIC"]) == raw_ends(written), timeout=120)
        eventually(flag.exists, timeout=120)  # the receiver is inside the stalled call, later events read ahead
        consumer.kill()
        before = lines(received)
        assert stalled.dedupe_id in before
        assert len(set(before)) < EVENTS  # killed with work left

        consumer = Service(command, consumer_env, tmp_path / "consumer.log").start()
        eventually(lambda: expected <= set(lines(received)), timeout=180, interval=0.5)
        assert consumer.stop() == 0  # SIGTERM: finishes and commits what it read
    finally:
        consumer.stop()
        normalizer.stop()

    after = lines(received)
    assert set(after) == expected  # every event handled, nothing else
    # The event in hand at the kill was not finished, so not committed: it came again.
    assert after.count(stalled.dedupe_id) == 2
    repeated = len(after) - len(set(after))
    print(f"consumer SIGKILLed after {len(set(before))} of {EVENTS} events had reached the receiver; "
          f"{repeated} event(s) handled again after the restart, 0 missing")
