"""``espstream group reset``: a consumer group's offsets moved back or forward, decided by reading the topic.

A real `espstream consume` process handles events produced to the test's own
normalized topic; the reset runs as `python -m espstream group reset`, and what a
restarted member handles again shows where the group now starts.
"""

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_consumers import event, lines, produce
from tests.support.services import Service, eventually, own_topics

RECEIVERS = "tests.support.receivers_for_cli"


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> dict[str, str]:
    settings = own_topics(broker.bootstrap_servers, registry_url, partitions=2)
    ensure_topics(settings_from_env(settings))
    return {**os.environ, **settings, "RECEIVED_EVENTS_FILE": str(tmp_path / "received.jsonl")}


def espstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "espstream", *args], env=env, capture_output=True, text=True, timeout=120)


def committed(env: dict[str, str], group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(env["ESPSTREAM_NORMALIZED_TOPIC"], p) for p in (0, 1)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}


def table(output: str) -> dict[int, tuple[str, str]]:
    """partition -> (current, new) from the printed table."""
    rows = [line.split() for line in output.splitlines()[1:] if line and not line.startswith(("dry run", "committed"))]
    return {int(row[2]): (row[3], row[4]) for row in rows}


def handle_all(env: dict[str, str], tmp_path: Path, group: str, expected: int) -> None:
    """Run a member of ``group`` until RECEIVED_EVENTS_FILE holds ``expected`` lines and it committed them."""
    member = Service(["consume", RECEIVERS, "--group", group], env, tmp_path / f"{uuid.uuid4().hex}.log").start()
    try:
        eventually(lambda: len(lines(Path(env["RECEIVED_EVENTS_FILE"]))) == expected)
    finally:
        assert member.stop() == 0, member.log()


def test_reset_is_a_dry_run_until_executed_and_the_group_starts_where_it_was_put(env: dict[str, str], tmp_path: Path) -> None:
    group = f"reset-{uuid.uuid4().hex[:8]}"
    before = [event(str(uuid.uuid4()), n) for n in range(3)]
    produce(env, before[:2], partition=0)
    produce(env, before[2:], partition=1)
    time.sleep(1.0)
    between = datetime.now(UTC)
    time.sleep(1.0)
    after = [event(str(uuid.uuid4()), n) for n in range(3, 5)]
    produce(env, after, partition=1)
    handle_all(env, tmp_path, group, 5)
    assert committed(env, group) == {0: 2, 1: 3}
    out = Path(env["RECEIVED_EVENTS_FILE"])

    # A dry run: the current and new offsets, nothing changed.
    dry = espstream(env, "group", "reset", "--group", group, "--to-earliest")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]
    assert table(dry.stdout) == {0: ("2", "0"), 1: ("3", "0")}
    assert "dry run" in dry.stdout
    assert committed(env, group) == {0: 2, 1: 3}

    # Refused while the group has a member.
    member = Service(["consume", RECEIVERS, "--group", group], env, tmp_path / "member.log").start()
    try:
        eventually(lambda: '"assigned [' in member.log())
        done = espstream(env, "group", "reset", "--group", group, "--to-earliest", "--execute")
        assert done.returncode == 1
        assert "active member" in done.stderr and "stop its consumers" in done.stderr
        assert committed(env, group) == {0: 2, 1: 3}
    finally:
        assert member.stop() == 0

    # By time: the first record written at or after it; the group handles the later events again.
    by_time = espstream(env, "group", "reset", "--group", group, "--to-time", between.isoformat(), "--execute")
    assert by_time.returncode == 0, by_time.stderr
    assert table(by_time.stdout) == {0: ("2", "2"), 1: ("3", "1")}
    assert committed(env, group) == {0: 2, 1: 1}
    out.unlink()
    handle_all(env, tmp_path, group, 2)
    assert sorted(line["message_id"] for line in lines(out)) == sorted(e.message_id for e in after)

    # Offsets: only the partitions named move; the latest: each partition's end.
    by_offsets = espstream(env, "group", "reset", "--group", group, "--to-offsets", "0:1", "--execute")
    assert by_offsets.returncode == 0, by_offsets.stderr
    assert table(by_offsets.stdout) == {0: ("2", "1")}
    assert committed(env, group) == {0: 1, 1: 3}
    latest = espstream(env, "group", "reset", "--group", group, "--to-latest", "--execute")
    assert table(latest.stdout) == {0: ("1", "2"), 1: ("3", "3")}
    assert committed(env, group) == {0: 2, 1: 3}

    # A group that never committed shows "-"; a partition the topic lacks is an error.
    fresh = espstream(env, "group", "reset", "--group", f"new-{uuid.uuid4().hex[:8]}", "--to-latest")
    assert table(fresh.stdout) == {0: ("-", "2"), 1: ("-", "3")}
    missing = espstream(env, "group", "reset", "--group", group, "--to-offsets", "7:0")
    assert missing.returncode == 1 and "no partition 7" in missing.stderr
