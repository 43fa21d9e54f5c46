"""Consumer groups against a real broker: partitions shared and handed over, order per message,
retries, dead letters and their redrive, stop and restart, the dedupe window.

Events are produced straight to the test's own normalized topic, Avro-encoded as
the normalizer encodes them; receivers run in this process (a runner per thread)
or in `espstream consume` processes.
"""

import copy
import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.consumers.runner import TrackingConsumer
from espstream.consumers.settings import ConsumerSettings
from espstream.consumers.signals import Signal
from espstream.embedded import EmbeddedBroker
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import EventSerializer
from tests.conftest import settings_from_env
from tests.support.services import Service, eventually, own_topics, read_topic

PARTITIONS = 3


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    """Settings naming this test's own topics."""
    env = {
        **own_topics(broker.bootstrap_servers, registry_url, PARTITIONS),
        "ESPSTREAM_CONSUMER_RETRY_BACKOFF_SECONDS": "0.01",
    }
    ensure_topics(settings_from_env(env))
    return env


def consumer_settings(env: dict[str, str], **overrides: object) -> ConsumerSettings:
    return ConsumerSettings(**{**settings_from_env(env).model_dump(), **overrides})


def event(message_id: str, seq: int, dedupe_id: str | None = None) -> TrackingEvent:
    return TrackingEvent(
        event_type="delivered",
        timestamp=datetime.now(UTC),
        message_id=message_id,
        recipient="alice@example.com",
        metadata={"seq": seq},
        esp_name="Postmark",
        dedupe_id=dedupe_id or uuid.uuid4().hex,
        provenance=Provenance(
            esp="postmark", topic="raw", partition=0, offset=seq, index=0, received_at=None, request_id=None, normalizer_version="test"
        ),
    )


def sequences(keys: int, per_key: int) -> list[TrackingEvent]:
    """``per_key`` events for each of ``keys`` messages, interleaved as webhooks arrive."""
    message_ids = [str(uuid.uuid4()) for _ in range(keys)]
    return [event(message_id, seq) for seq in range(per_key) for message_id in message_ids]


def produce(env: dict[str, str], events: list[TrackingEvent], partition: int = -1) -> None:
    """Keyed by message id; into ``partition`` if given, else where the key hashes to."""
    settings = settings_from_env(env)
    serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)
    producer = Producer(settings.kafka())
    for each in events:
        producer.produce(settings.normalized_topic, serialize(each), key=each.message_id.encode(), partition=partition)
    assert producer.flush(30) == 0


class Member:
    """A consumer-group member in this process; ``receive`` is its one receiver."""

    def __init__(self, env: dict[str, str], group: str, receive: Callable[..., object], concurrency: int = 1, **settings: object):
        signal = Signal()
        signal.connect(receive)
        self.runner = TrackingConsumer(group, signal, consumer_settings(env, **settings), concurrency)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)

    def partitions(self) -> set[int]:
        return {partition for _, partition in self.runner.inflight.partitions()}

    def __enter__(self) -> "Member":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()


class Calls:
    """What receivers were called with, thread-safe."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._lock = threading.Lock()

    def receiver(self, name: str) -> Callable[..., None]:
        def receive(sender, event, esp_name, **kwargs):
            with self._lock:
                self.calls.append({"member": name, "dedupe_id": event.dedupe_id, "seq": event.metadata["seq"], "message_id": event.message_id, **kwargs})

        return receive

    def dedupe_ids(self, member: str | None = None) -> list[str]:
        with self._lock:
            return [c["dedupe_id"] for c in self.calls if member is None or c["member"] == member]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def espstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "espstream", *args], env=env, capture_output=True, text=True, timeout=120)


def committed(env: dict[str, str], group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}


@pytest.fixture
def process_env(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {**os.environ, **env, "RECEIVED_EVENTS_FILE": str(tmp_path / "received.jsonl")}


def test_two_members_share_the_partitions_and_a_rebalance_hands_nothing_over_twice(env: dict[str, str]) -> None:
    group = f"shared-{uuid.uuid4().hex[:8]}"
    calls = Calls()
    first_batch, second_batch, third_batch = sequences(20, 12), sequences(20, 5), sequences(20, 10)
    everything = {e.dedupe_id for e in first_batch + second_batch + third_batch}

    def slow(name: str) -> Callable[..., None]:
        record = calls.receiver(name)

        def receive(sender, event, esp_name, **kwargs):
            threading.Event().wait(0.04)  # work in flight when the group rebalances
            record(sender, event, esp_name, **kwargs)

        return receive

    # A short read-ahead: each rebalance finds events in flight and events not read yet.
    with Member(env, group, slow("first"), concurrency=2, consumer_batch_size=20) as first:
        eventually(lambda: first.partitions() == set(range(PARTITIONS)))
        produce(env, first_batch)
        with Member(env, group, slow("second"), concurrency=4, consumer_batch_size=20) as second:
            # The second member joins while the first is busy.
            eventually(lambda: first.partitions() and second.partitions() and first.partitions() | second.partitions() == set(range(PARTITIONS)))
            assert not first.partitions() & second.partitions()
            produce(env, second_batch)
            eventually(lambda: {e.dedupe_id for e in first_batch + second_batch} <= set(calls.dedupe_ids()), timeout=60)
            # The first member leaves while busy: its partitions move to the second.
            produce(env, third_batch)
            first.stop()
            eventually(lambda: everything <= set(calls.dedupe_ids()), timeout=60)

    handled = Counter(calls.dedupe_ids())
    assert set(handled) == everything
    assert [d for d, n in handled.items() if n > 1] == []
    second_batch_ids = {e.dedupe_id for e in second_batch}
    # While both were members, both handled some of the events.
    assert second_batch_ids & set(calls.dedupe_ids("first")) and second_batch_ids & set(calls.dedupe_ids("second"))


def test_two_groups_each_receive_every_event(env: dict[str, str]) -> None:
    calls = Calls()
    events = sequences(5, 4)
    with Member(env, f"billing-{uuid.uuid4().hex[:8]}", calls.receiver("billing")), Member(
        env, f"analytics-{uuid.uuid4().hex[:8]}", calls.receiver("analytics"), concurrency=3
    ):
        produce(env, events)
        ids = {e.dedupe_id for e in events}
        eventually(lambda: ids <= set(calls.dedupe_ids("billing")) and ids <= set(calls.dedupe_ids("analytics")))
    assert sorted(calls.dedupe_ids("billing")) == sorted(ids)
    assert sorted(calls.dedupe_ids("analytics")) == sorted(ids)


def test_async_receivers_with_concurrency_8_keep_each_messages_order(process_env: dict[str, str], tmp_path: Path) -> None:
    out = Path(process_env["RECEIVED_EVENTS_FILE"])
    group = f"ordered-{uuid.uuid4().hex[:8]}"
    consumer = Service(["consume", "tests.support.receivers_async", "--group", group, "--concurrency", "8"], process_env, tmp_path / "consume.log").start()
    try:
        events = sequences(16, 12)
        produce(process_env, events)
        eventually(lambda: len(lines(out)) >= len(events), timeout=60)
    finally:
        assert consumer.stop() == 0
    received = lines(out)
    assert len(received) == len(events)
    by_message: dict[str, list[int]] = {}
    for line in received:
        by_message.setdefault(line["message_id"], []).append(line["seq"])
    assert by_message == {message_id: list(range(12)) for message_id in {e.message_id for e in events}}
    # Different messages did run at the same time.
    assert max(line["running"] for line in received) > 1


def test_sigterm_commits_what_was_handled_and_a_restart_handles_the_rest_once(process_env: dict[str, str], tmp_path: Path) -> None:
    out = Path(process_env["RECEIVED_EVENTS_FILE"])
    group = f"restart-{uuid.uuid4().hex[:8]}"
    # A short read-ahead, so that the stop leaves events unread.
    env = {**process_env, "RECEIVER_SLEEP_SECONDS": "0.02", "ESPSTREAM_CONSUMER_BATCH_SIZE": "8"}
    events = sequences(30, 5)
    produce(env, events)
    args = ["consume", "tests.support.receivers_for_consumers", "--group", group, "--concurrency", "3"]
    consumer = Service(args, env, tmp_path / "consume-1.log").start()
    eventually(lambda: len([l for l in lines(out) if l["receiver"] == "record"]) >= 20, timeout=60)
    assert consumer.stop() == 0  # SIGTERM

    handled = [l for l in lines(out) if l["receiver"] == "record"]
    assert len(handled) < len(events)
    offsets: dict[int, set[int]] = {}
    for line in handled:
        offsets.setdefault(line["partition"], set()).add(line["offset"])
    # Each partition's commit is exactly the handled prefix of it.
    commits = committed(env, group, env["ESPSTREAM_NORMALIZED_TOPIC"])
    assert {p: set(range(commits.get(p, 0))) for p in range(PARTITIONS)} == {p: offsets.get(p, set()) for p in range(PARTITIONS)}

    consumer = Service(args, env, tmp_path / "consume-2.log").start()
    try:
        eventually(lambda: len([l for l in lines(out) if l["receiver"] == "record"]) >= len(events), timeout=60)
    finally:
        assert consumer.stop() == 0
    assert Counter(l["dedupe_id"] for l in lines(out) if l["receiver"] == "record") == Counter(e.dedupe_id for e in events)


def test_dead_letters_are_redriven_to_their_receiver_once_fixed(process_env: dict[str, str], tmp_path: Path) -> None:
    out = Path(process_env["RECEIVED_EVENTS_FILE"])
    broken = tmp_path / "broken"
    group = f"redrive-{uuid.uuid4().hex[:8]}"
    env = {**process_env, "RECEIVER_BROKEN_FILE": str(broken), "ESPSTREAM_CONSUMER_MAX_ATTEMPTS": "2"}
    poison, later = event(str(uuid.uuid4()), 0), event(str(uuid.uuid4()), 0)
    broken.write_text(poison.message_id)
    dlq_topic = f"{env['ESPSTREAM_NORMALIZED_TOPIC']}.dlq.{group}"
    receiver_name = "tests.support.receivers_for_consumers.record"

    consumer = Service(["consume", "tests.support.receivers_for_consumers", "--group", group], env, tmp_path / "consume.log").start()
    try:
        produce(env, [poison, later])
        eventually(lambda: {"record", "audit"} <= {l["receiver"] for l in lines(out) if l["message_id"] == later.message_id})
    finally:
        assert consumer.stop() == 0
    [original] = read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], dlq_topic)
    source_offset = int(dict(original.headers())["dlq-source-offset"])

    listed = espstream(env, "dlq", "list", "--group", group, "--letters")
    assert listed.returncode == 0, listed.stderr
    [pending] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (pending["receiver"], pending["attempts"], pending["error-class"]) == (receiver_name, "2", "RuntimeError")
    assert (pending["key"], pending["esp"]) == (poison.message_id, "postmark")
    counted = json.loads(espstream(env, "dlq", "list", "--group", group, "--json").stdout)
    assert [(g["esp"], g["receiver"], g["error_class"], g["letters"], g["attempts"]) for g in counted["groups"]] == [
        ("postmark", receiver_name, "RuntimeError", 1, {"2": 1})
    ]
    shown = espstream(env, "dlq", "show", "--group", group, f"{original.partition()}:{original.offset()}")
    assert shown.returncode == 0, shown.stderr
    assert f"  dlq-receiver: {receiver_name}" in shown.stdout.splitlines()
    assert json.loads(shown.stdout.split("decoded):\n", 1)[1])["dedupe_id"] == poison.dedupe_id

    # Still broken: back to the dead-letter topic, its attempts added up.
    again = espstream(env, "dlq", "redrive", "tests.support.receivers_for_consumers", "--group", group)
    assert again.returncode == 1, again.stderr  # for CI: letters failed again
    assert "1 letter failed again" in again.stderr
    [outcome] = [json.loads(line) for line in again.stdout.splitlines()]
    assert (outcome["receiver"], outcome["result"], outcome["attempts"]) == (receiver_name, "dead-lettered again", 4)
    letters = read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], dlq_topic)
    assert [dict(m.headers())["dlq-attempts"] for m in sorted(letters, key=lambda m: m.offset())] == [b"2", b"4"]

    broken.unlink()
    fixed = espstream(env, "dlq", "redrive", "tests.support.receivers_for_consumers", "--group", group)
    assert fixed.returncode == 0, fixed.stderr
    [outcome] = [json.loads(line) for line in fixed.stdout.splitlines()]
    assert (outcome["result"], outcome["dedupe_id"]) == ("delivered", poison.dedupe_id)
    poison_calls = [l for l in lines(out) if l["message_id"] == poison.message_id]
    # The named receiver got it, with the event's own position; its sibling was not called again.
    assert [(l["receiver"], l["offset"]) for l in poison_calls] == [("audit", source_offset), ("record", source_offset)]

    nothing = espstream(env, "dlq", "redrive", "tests.support.receivers_for_consumers", "--group", group)
    assert (nothing.returncode, nothing.stdout) == (0, "")
    assert espstream(env, "dlq", "list", "--group", group, "--letters").stdout == ""
    assert espstream(env, "dlq", "list", "--group", group).stdout == f"0 pending dead letters on {dlq_topic}\n"
    assert len(lines(out)) == len(poison_calls) + 2
    never_failed = espstream(env, "dlq", "list", "--group", f"quiet-{uuid.uuid4().hex[:8]}", "--letters")
    assert (never_failed.returncode, never_failed.stdout) == (0, "")


def test_the_dedupe_window_drops_a_repeat_the_default_does_not(env: dict[str, str]) -> None:
    calls = Calls()
    first = event(str(uuid.uuid4()), 0)
    repeat = event(first.message_id, 0, dedupe_id=first.dedupe_id)
    last = event(first.message_id, 1)  # same message: handled after the repeat
    with Member(env, f"window-{uuid.uuid4().hex[:8]}", calls.receiver("window"), consumer_dedupe_window=100), Member(
        env, f"plain-{uuid.uuid4().hex[:8]}", calls.receiver("plain")
    ):
        produce(env, [first, repeat, last])
        eventually(lambda: last.dedupe_id in calls.dedupe_ids("window") and last.dedupe_id in calls.dedupe_ids("plain"))
    assert calls.dedupe_ids("window") == [first.dedupe_id, last.dedupe_id]
    assert calls.dedupe_ids("plain") == [first.dedupe_id, first.dedupe_id, last.dedupe_id]


def test_a_failing_async_receiver_is_retried_then_dead_lettered_while_other_messages_flow(env: dict[str, str]) -> None:
    group = f"async-{uuid.uuid4().hex[:8]}"
    poison = event(str(uuid.uuid4()), 0)
    others = sequences(6, 2)
    attempts: list[str] = []
    handled: list[str] = []

    async def flaky(sender, event, esp_name, **kwargs):
        if event.message_id == poison.message_id:
            attempts.append(event.dedupe_id)
            raise ValueError("not today")
        handled.append(event.dedupe_id)

    with Member(env, group, flaky, concurrency=2, consumer_max_attempts=3) as member:
        produce(env, [poison, *others])
        eventually(lambda: {e.dedupe_id for e in others} <= set(handled))
        dlq_topic = member.runner.dlq_topic
        eventually(lambda: read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], dlq_topic))
    assert attempts == [poison.dedupe_id] * 3
    [letter] = read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], dlq_topic)
    headers = dict(letter.headers())
    assert headers["dlq-receiver"] == f"{__name__}.{flaky.__qualname__}".encode()
    assert (headers["dlq-error-class"], headers["dlq-attempts"]) == (b"ValueError", b"3")


def test_a_stuck_receiver_holds_back_reading_to_the_read_ahead(env: dict[str, str]) -> None:
    """Other keys' lanes run ahead of a stuck event only by consumer_batch_size events.

    The partition's commit stays at the stuck event: every event read after it is what
    a crash would hand out again, and what the process holds meanwhile.
    """
    read_ahead = 6
    stuck, others = event(str(uuid.uuid4()), 0), sequences(30, 1)
    unstuck = threading.Event()
    handled: list[str] = []

    def receive(sender, event, esp_name, **kwargs):
        if event.message_id == stuck.message_id:
            unstuck.wait(60)
        handled.append(event.dedupe_id)

    with Member(env, f"stuck-{uuid.uuid4().hex[:8]}", receive, concurrency=4, consumer_batch_size=read_ahead) as member:
        eventually(lambda: member.partitions() == set(range(PARTITIONS)))
        produce(env, [stuck, *others], partition=0)
        # Reading stops once the stuck event and the events after it fill the read-ahead.
        eventually(lambda: member.runner._paused and member.runner.inflight.read_ahead() >= read_ahead)
        work = member.runner.inflight.get((env["ESPSTREAM_NORMALIZED_TOPIC"], 0))
        assert work is not None and work.next_offset is not None and work.next_offset <= read_ahead
        assert stuck.dedupe_id not in handled and len(handled) < read_ahead
        unstuck.set()
        eventually(lambda: len(handled) == 1 + len(others))
    assert Counter(handled) == Counter(e.dedupe_id for e in [stuck, *others])


def test_the_dedupe_window_drops_a_repeat_handled_at_the_same_time_on_another_lane(env: dict[str, str]) -> None:
    """Events without message id or recipient carry no key: a resent one may land on another partition's lane."""
    original = event("unused", 0)
    original.message_id = original.recipient = None
    repeat = copy.copy(original)
    settings = settings_from_env(env)
    serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)
    topic = settings.normalized_topic
    calls: list[int] = []
    lock = threading.Lock()
    member: Member

    def receive(sender, event, esp_name, **kwargs):
        with lock:
            calls.append(kwargs["partition"])
            first = len(calls) == 1
        if first:  # still at work until the repeat was read and dealt with
            eventually(repeat_dealt_with)

    def repeat_dealt_with() -> bool:
        inflight = member.runner.inflight
        works = [inflight.get((topic, partition)) for partition in (0, 1)]
        return all(w is not None and w.next_offset == 1 for w in works) and inflight.unfinished() == 1

    with Member(env, f"lanes-{uuid.uuid4().hex[:8]}", receive, concurrency=2, consumer_dedupe_window=100) as member:
        eventually(lambda: member.partitions() == set(range(PARTITIONS)))
        producer = Producer(settings.kafka())
        for partition, each in enumerate([original, repeat]):
            producer.produce(topic, serialize(each), partition=partition)
        assert producer.flush(30) == 0
        eventually(lambda: calls and member.runner.inflight.unfinished() == 0)
    assert len(calls) == 1


OTHER_SIGNAL_ONLY = '''
from espstream.consumers import Signal, receiver

mine = Signal()


@receiver(mine)
def never_called(sender, event, esp_name, **kwargs):
    raise AssertionError("not the tracking signal")
'''


def test_consume_refuses_a_module_with_no_tracking_receiver_unless_allowed(process_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "no_tracking_receivers.py").write_text(OTHER_SIGNAL_ONLY)
    env = {**process_env, "PYTHONPATH": str(tmp_path)}
    group = f"empty-{uuid.uuid4().hex[:8]}"
    produce(env, [event(str(uuid.uuid4()), 0)])

    refused = espstream(env, "consume", "no_tracking_receivers", "--group", group)
    assert refused.returncode == 2
    assert "no_tracking_receivers connect no receiver to espstream.consumers.tracking" in refused.stderr
    assert "--allow-no-receivers" in refused.stderr
    assert committed(env, group, env["ESPSTREAM_NORMALIZED_TOPIC"]) == {}  # nothing was skipped

    allowed = Service(["consume", "no_tracking_receivers", "--group", group, "--allow-no-receivers"], env, tmp_path / "c.log").start()
    try:
        eventually(lambda: sum(committed(env, group, env["ESPSTREAM_NORMALIZED_TOPIC"]).values()) == 1)
    finally:
        assert allowed.stop() == 0, allowed.log()
