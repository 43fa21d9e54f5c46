"""`espstream replay` and `replay --diff` against a real broker and registry, after a (simulated) normalizer fix.

The fix is simulated honestly: the CLI runs in a subprocess through a small
script that changes the Postmark module before calling `espstream`'s main():
hard bounces become rejected/invalid, Postmark inbound posts (dead letters
before) give no event, and clicks are refused (dead letters now).
"""

import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.normalizer import normalize
from espstream.normalizer.replay import end_group, progress_group
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import TrackingEvent, raw
from espstream.schemas.avro import EventDeserializer
from tests.conftest import settings_from_env
from tests.support.services import Service, eventually, own_topics, read_topic

ROOT = Path(__file__).resolve().parents[2]

FIX = '''\
"""espstream's CLI with a changed Postmark mapping, as if the normalizer had been fixed."""
import sys

from espstream.normalizer.errors import MalformedPayload
from espstream.normalizer.esps import postmark
from espstream.schemas import EventType, RejectReason

postmark.TYPES["HardBounce"] = (EventType.REJECTED, RejectReason.INVALID)
_parse_events = postmark.parse_events


def parse_events(request):
    body = request.json()
    if isinstance(body, dict) and body.get("RecordType") == "Inbound":
        return []
    if isinstance(body, dict) and body.get("RecordType") == "Click":
        raise MalformedPayload("clicks are refused now")
    return _parse_events(request)


postmark.parse_events = parse_events

from espstream.cli import main

sys.exit(main(sys.argv[1:]))
'''


# --- raw records as the gateway writes them -------------------------------------------------------


def postmark(kind: str, number: int) -> bytes:
    message_id = str(uuid.UUID(int=number + 1))
    base = {"MessageID": message_id, "Metadata": {"customer": str(number)}, "Tag": "welcome", "MessageStream": "outbound"}
    if kind == "delivery":
        body = {**base, "RecordType": "Delivery", "Recipient": f"u{number}@example.com", "DeliveredAt": "2026-11-23T16:33:54.9070259Z", "Details": "smtp;250 OK"}
    elif kind == "hard_bounce":
        body = {**base, "RecordType": "Bounce", "ID": 4323372036854775807 - number, "Type": "HardBounce", "TypeCode": 1, "Email": f"u{number}@example.com",
                "BouncedAt": "2026-11-23T16:40:00Z", "Description": "unknown user", "Details": "smtp;550 5.1.1 unknown user"}
    elif kind == "click":
        body = {**base, "RecordType": "Click", "Recipient": f"u{number}@example.com", "ReceivedAt": "2026-11-23T17:02:40Z",
                "OriginalLink": f"https://example.com/?n={number}", "UserAgent": "Mozilla/5.0"}
    elif kind == "inbound":  # an inbound post on the tracking URL: a dead letter before the fix
        body = {"RecordType": "Inbound", "MessageID": message_id, "From": "someone@example.com"}
    else:
        raise ValueError(kind)
    return json.dumps(body).encode()


def sendgrid(number: int) -> bytes:
    return json.dumps(
        [
            {"email": f"s{number}@example.com", "timestamp": 1764000000 + number, "event": "delivered", "sg_event_id": f"d-{number}",
             "sg_message_id": f"sg{number}.filter", "response": "250 OK", "category": ["welcome"]},
            {"email": f"s{number}@example.com", "timestamp": 1764000100 + number, "event": "open", "sg_event_id": f"o-{number}",
             "sg_message_id": f"sg{number}.filter", "useragent": "Mozilla/5.0"},
        ]
    ).encode()


KINDS = ("delivery", "hard_bounce", "click", "inbound", "sendgrid", "delivery")


def raw_record(number: int) -> tuple[str, bytes]:
    kind = KINDS[number % len(KINDS)]
    return ("sendgrid", sendgrid(number)) if kind == "sendgrid" else ("postmark", postmark(kind, number))


def headers(esp: str) -> raw.Headers:
    return [
        (raw.ESP, esp.encode()),
        (raw.CONTENT_TYPE, b"application/json"),
        (raw.RECEIVED_AT, datetime.now(UTC).isoformat().encode()),
        (raw.REQUEST_ID, uuid.uuid4().hex.encode()),
        ("http-user-agent", b"test"),
    ]


def produce_raw(bootstrap_servers: str, topic: str, records: list[tuple[str, bytes, int, int | None]]) -> None:
    """(esp, body, partition, timestamp ms or None) each, acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all", "linger.ms": 20})
    for esp, body, partition, timestamp in records:
        producer.produce(topic, body, partition=partition, headers=headers(esp), **({"timestamp": timestamp} if timestamp else {}))
    assert producer.flush(30) == 0


# --- running the CLI --------------------------------------------------------------------------------


@dataclass
class History:
    env: dict[str, str]
    fix: Path  # the patched CLI script
    tmp: Path
    bootstrap_servers: str
    registry_url: str

    def topic(self, name: str) -> str:
        return self.env[f"ESPSTREAM_{name.upper()}_TOPIC"]

    def cli(self, *args: str, fixed: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(self.fix)] if fixed else [sys.executable, "-m", "espstream"]
        return subprocess.run(
            [*command, *args], env=self.process_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )

    def process_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, "PYTHONPATH": str(ROOT), **extra}


def make_env(bootstrap_servers: str, registry_url: str) -> dict[str, str]:
    return own_topics(bootstrap_servers, registry_url)


HISTORY_SIZE = 60


@pytest.fixture(scope="module")
def history(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> History:
    """HISTORY_SIZE raw webhooks, normalized by the live normalizer service (before the fix)."""
    env = make_env(broker.bootstrap_servers, registry_url)
    ensure_topics(settings_from_env(env))
    tmp = tmp_path_factory.mktemp("replay")
    fix = tmp / "fixed_espstream.py"
    fix.write_text(FIX)
    records = [(*raw_record(n), n % 3, None) for n in range(HISTORY_SIZE)]
    produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], records)
    events = sum(len(safe_normalize(esp, body) or ()) for esp, body, _p, _t in records)
    letters = sum(1 for esp, body, _p, _t in records if safe_normalize(esp, body) is None)
    normalizer = Service(["normalize"], env, tmp / "normalizer.log").start()
    try:
        eventually(lambda: len(read_topic(broker.bootstrap_servers, env["ESPSTREAM_NORMALIZED_TOPIC"])) == events, timeout=60, interval=1)
        eventually(lambda: len(read_topic(broker.bootstrap_servers, env["ESPSTREAM_DLQ_TOPIC"])) == letters, timeout=30, interval=1)
    finally:
        normalizer.stop()
    return History(env, fix, tmp, broker.bootstrap_servers, registry_url)


def safe_normalize(esp: str, body: bytes) -> list[TrackingEvent] | None:
    try:
        return normalize(esp, body, "application/json", {})
    except Exception:
        return None


def events_by_origin(history: History, topic: str) -> dict[tuple[int, int, int], list[TrackingEvent]]:
    """The events on ``topic``, by their raw record's (partition, offset) and index."""
    decode = EventDeserializer(SchemaRegistryClient({"url": history.registry_url}))
    found: dict[tuple[int, int, int], list[TrackingEvent]] = {}
    for message in read_topic(history.bootstrap_servers, topic):
        event = decode(message.value(), topic)
        origin = event.provenance
        found.setdefault((origin.partition, origin.offset, origin.index), []).append(event)
    return found


def raw_by_position(history: History, topic: str | None = None) -> dict[tuple[int, int], Message]:
    return {(m.partition(), m.offset()): m for m in read_topic(history.bootstrap_servers, topic or history.topic("raw"))}


def kind_of(message: Message) -> str:
    body = json.loads(message.value())
    return "sendgrid" if isinstance(body, list) else body["RecordType"]


def last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def topic_counts(history: History, *topics: str) -> dict[str, int]:
    return {topic: len(read_topic(history.bootstrap_servers, topic)) for topic in topics}


# --- tests ------------------------------------------------------------------------------------------


def test_replay_after_a_fix_writes_corrected_events_with_their_dedupe_ids(history: History) -> None:
    target, dlq = f"{history.topic('normalized')}.v2", f"{history.topic('dlq')}.v2"
    done = history.cli("replay", "--to-topic", target, "--dlq-topic", dlq, "--json")
    assert done.returncode == 0, done.stderr
    summary = last_json(done.stdout)

    before = events_by_origin(history, history.topic("normalized"))
    after = events_by_origin(history, target)
    raws = raw_by_position(history)
    kinds = Counter(kind_of(m) for m in raws.values())
    assert summary["status"] == "finished" and summary["target"] == target
    assert summary["read"] == HISTORY_SIZE and summary["skipped"] == 0
    assert summary["dead_letters"] == kinds["Click"]
    assert summary["events"] == len(after) == kinds["Delivery"] + kinds["Bounce"] + 2 * kinds["sendgrid"]
    assert summary["esps"]["sendgrid"] == {"read": kinds["sendgrid"], "events": 2 * kinds["sendgrid"], "dead_letters": 0, "skipped": 0}

    assert all(len(copies) == 1 for copies in after.values())
    for (partition, offset, index), [event] in after.items():
        [old] = before[(partition, offset, index)]
        assert event.dedupe_id == old.dedupe_id  # the same event, corrected
        if kind_of(raws[(partition, offset)]) == "Bounce":
            assert (old.event_type, old.reject_reason) == ("bounced", "bounced")
            assert (event.event_type, event.reject_reason) == ("rejected", "invalid")
        else:
            assert (event.event_type, event.reject_reason) == (old.event_type, old.reject_reason)
        assert (event.message_id, event.recipient, event.timestamp, event.metadata) == (old.message_id, old.recipient, old.timestamp, old.metadata)
    # Clicks are dead letters now; inbound posts are no longer.
    assert {key[:2] for key in before} - {key[:2] for key in after} == {p for p, m in raws.items() if kind_of(m) == "Click"}
    letters = read_topic(history.bootstrap_servers, dlq)
    assert sorted((int(h(m, raw.DLQ_SOURCE_PARTITION)), int(h(m, raw.DLQ_SOURCE_OFFSET))) for m in letters) == sorted(
        p for p, m in raws.items() if kind_of(m) == "Click"
    )
    letter = letters[0]
    assert h(letter, raw.DLQ_STAGE) == "normalize" and h(letter, raw.DLQ_ERROR_CLASS) == "MalformedPayload"
    assert h(letter, raw.DLQ_SOURCE_TOPIC) == history.topic("raw") and h(letter, raw.ESP) == "postmark"
    assert letter.value() == raws[(int(h(letter, raw.DLQ_SOURCE_PARTITION)), int(h(letter, raw.DLQ_SOURCE_OFFSET)))].value()
    # The serializer registered the schema under the target topic's subject.
    assert f"{target}-value" in httpx.get(f"{history.registry_url}/subjects").json()

    again = history.cli("replay", "--to-topic", target, "--dlq-topic", dlq)
    assert again.returncode == 0 and "already finished" in again.stdout
    assert topic_counts(history, target) == {target: len(after)}


def h(message: Message, name: str) -> str | None:
    values = [value.decode() for key, value in message.headers() or () if key == name]
    return values[-1] if values else None


def test_diff_reports_exactly_what_the_fix_changes_and_writes_nothing(history: History) -> None:
    topics = [history.topic(name) for name in ("raw", "normalized", "dlq")]
    counts_before = topic_counts(history, *topics)
    subjects_before = httpx.get(f"{history.registry_url}/subjects").json()

    done = history.cli("replay", "--diff", "--json")
    assert done.returncode == 0, done.stderr
    report = last_json(done.stdout)
    # For CI, as `git diff --exit-code`: 1 when anything differs.
    checked = history.cli("replay", "--diff", "--exit-code", "--esp", "sendgrid,postmark")
    assert checked.returncode == 1, checked.stderr
    assert "event_type: changed in" in checked.stdout

    assert topic_counts(history, *topics) == counts_before
    assert httpx.get(f"{history.registry_url}/subjects").json() == subjects_before
    raws = raw_by_position(history)
    by_kind: dict[str, list[str]] = {}
    for (partition, offset), message in sorted(raws.items()):
        by_kind.setdefault(kind_of(message), []).append(f"{partition}:{offset}")
    assert report["raw_records"] == HISTORY_SIZE and report["differs"]
    assert set(report["esps"]) == {"postmark", "sendgrid"}
    sendgrid_diff = report["esps"]["sendgrid"]
    assert (sendgrid_diff["changed"], sendgrid_diff["appeared"], sendgrid_diff["disappeared"], sendgrid_diff["fields"]) == (0, 0, 0, {})
    assert sendgrid_diff["unchanged"] == 2 * len(by_kind["sendgrid"])
    postmark_diff = report["esps"]["postmark"]
    bounces = len(by_kind["Bounce"])
    assert set(postmark_diff["fields"]) == {"event_type", "reject_reason"}
    assert postmark_diff["fields"]["event_type"]["changed"] == postmark_diff["fields"]["reject_reason"]["changed"] == bounces
    assert postmark_diff["changed"] == bounces
    assert postmark_diff["unchanged"] == len(by_kind["Delivery"])
    assert postmark_diff["appeared"] == 0
    assert postmark_diff["disappeared"] == postmark_diff["now_dead_lettered"] == len(by_kind["Click"])
    assert postmark_diff["no_longer_dead_lettered"] == len(by_kind["Inbound"])
    example = postmark_diff["fields"]["event_type"]["examples"][0]
    assert (example["old"], example["new"]) == ("bounced", "rejected") and example["raw"] in by_kind["Bounce"]
    reason = postmark_diff["fields"]["reject_reason"]["examples"][0]
    assert (reason["old"], reason["new"]) == ("bounced", "invalid")
    assert {ex["raw"] for ex in postmark_diff["disappeared_examples"]} <= set(by_kind["Click"])
    assert all("MisconfiguredWebhook" in ex["was"] for ex in postmark_diff["no_longer_dead_lettered_examples"])

    readable = history.cli("replay", "--diff", "--esp", "Postmark")
    assert readable.returncode == 0, readable.stderr
    assert f"event_type: changed in {bounces} events" in readable.stdout
    assert f'raw {example["raw"]} #0: "bounced" -> "rejected"' in readable.stdout
    assert "sendgrid" not in readable.stdout.split("\n", 1)[1]  # left out by --esp (the first line names the skipped)

    # Without the fix, what the normalizer makes now is exactly what the service wrote.
    unchanged = history.cli("replay", "--diff", "--exit-code", fixed=False)
    assert unchanged.returncode == 0, unchanged.stderr
    assert unchanged.stdout.rstrip().endswith("no differences")
    # Nothing differs for SendGrid's records after the fix either.
    assert history.cli("replay", "--diff", "--exit-code", "--esp", "sendgrid").returncode == 0


def test_time_ranges_offsets_and_esp_filter_select_their_records(broker: EmbeddedBroker, registry_url: str, history: History) -> None:
    env = make_env(broker.bootstrap_servers, registry_url)
    ensure_topics(settings_from_env(env))
    local = History(env, history.fix, history.tmp, broker.bootstrap_servers, registry_url)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    stamps = [day, day + timedelta(days=1), day + timedelta(days=2)]
    records = []
    for group, moment in enumerate(stamps):
        for n in range(12):
            number = group * 100 + n
            records.append((*raw_record(number), n % 3, int(moment.timestamp() * 1000) + n))
    produce_raw(broker.bootstrap_servers, local.topic("raw"), records)
    raws = raw_by_position(local)

    target = f"{local.topic('normalized')}.day2"
    done = local.cli(
        "replay", "--from", "2026-11-21T00:00:00Z", "--to", "2026-11-22", "--esp", "sendgrid", "--to-topic", target, fixed=False
    )
    assert done.returncode == 0, done.stderr
    day2 = {p for p, m in raws.items() if stamps[1].timestamp() * 1000 <= m.timestamp()[1] < stamps[2].timestamp() * 1000}
    wanted = {p for p in day2 if kind_of(raws[p]) == "sendgrid"}
    written = events_by_origin(local, target)
    assert {key[:2] for key in written} == wanted and len(written) == 2 * len(wanted)
    # The table: sendgrid read and written, postmark read and skipped.
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if re.match(r"^(sendgrid|postmark|total) ", line)}
    assert rows["sendgrid"] == [str(len(wanted)), str(2 * len(wanted)), "0", "0"]
    assert rows["postmark"] == [str(len(day2) - len(wanted)), "0", "0", str(len(day2) - len(wanted))]
    assert rows["total"][0] == str(len(day2))

    offsets = f"{local.topic('normalized')}.offsets"
    done = local.cli("replay", "--from-offsets", "1:3", "--to-offsets", "1:7", "--to-topic", offsets, "--json", fixed=False)
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["read"] == 4
    expected = {(1, o) for o in range(3, 7) if safe_normalize(*_esp_body(raws[(1, o)]))}
    assert {key[:2] for key in events_by_origin(local, offsets)} == expected

    late = local.cli("replay", "--from", "2030-01-01T00:00:00+01:00", "--to-topic", offsets, "--json", fixed=False)
    assert late.returncode == 0 and last_json(late.stdout)["read"] == 0
    bad = local.cli("replay", "--from", "yesterday", fixed=False)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def _esp_body(message: Message) -> tuple[str, bytes]:
    return h(message, raw.ESP), message.value()


def committed(history: History, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": history.bootstrap_servers, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(history.topic("raw"), p) for p in range(3)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def progress_done(log: Path) -> int:
    """The records done in the last progress line of a replay's output."""
    found = re.findall(r"^replay \S+: (\d+)/\d+ raw records", log.read_text(errors="replace"), re.MULTILINE)
    return int(found[-1]) if found else 0


def test_an_interrupted_replay_resumes_without_gaps_or_duplicates(broker: EmbeddedBroker, registry_url: str, tmp_path: Path) -> None:
    env = {**make_env(broker.bootstrap_servers, registry_url), "ESPSTREAM_NORMALIZER_BATCH_SIZE": "20"}
    ensure_topics(settings_from_env(env))
    local = History(env, tmp_path / "unused.py", tmp_path, broker.bootstrap_servers, registry_url)
    size = 4000
    records = [("sendgrid", sendgrid(n), n % 3, None) if n % 2 else ("postmark", postmark("delivery", n), n % 3, None) for n in range(size)]
    produce_raw(broker.bootstrap_servers, local.topic("raw"), records)
    target = f"{local.topic('normalized')}.replayed"
    args = ["replay", "--to-topic", target, "--name", "resume-test", "--progress-interval", "0.2"]

    # Stopped politely (SIGTERM): it commits what it wrote and says how to go on.
    first = Service(args, env, tmp_path / "first.log").start()
    eventually(lambda: progress_done(first.log_path) > 0, timeout=60, interval=0.05)
    assert first.stop() == 130
    assert "interrupted; run it again to resume" in first.log()
    after_first = committed(local, progress_group("resume-test"))
    ends = committed(local, end_group("resume-test"))
    assert sum(ends.values()) == size
    assert sum(after_first.values()) < size

    # Killed: whatever it had not committed is written again by the next run.
    second = Service(args, env, tmp_path / "second.log").start()
    eventually(lambda: progress_done(second.log_path) > 0, timeout=60, interval=0.05)
    second.kill()
    acknowledged = committed(local, progress_group("resume-test"))
    assert all(acknowledged[p] >= after_first[p] for p in range(3)) and sum(acknowledged.values()) < size
    written_before = {p: len(events) for p, events in _written(local, target).items()}

    third = local.cli(*args, "--json", fixed=False, timeout=300)
    assert third.returncode == 0, third.stderr
    summary = last_json(third.stdout)
    assert summary["status"] == "finished" and summary["read"] == size - sum(acknowledged.values())
    assert committed(local, progress_group("resume-test")) == ends

    # Every raw record's events are on the target. Those before the killed run's checkpoint exactly once;
    # those after it exactly once from the last run, plus at most the killed run's unacknowledged copy.
    by_origin = events_by_origin(local, target)
    expected = {(p, o, i) for (p, o), m in raw_by_position(local).items() for i in range(len(safe_normalize(*_esp_body(m)) or ()))}
    assert set(by_origin) == expected
    for (partition, offset, _index), copies in by_origin.items():
        assert len(copies) == 1 if offset < acknowledged[partition] else len(copies) <= 2
    last_run = Counter()
    for partition, events in _written(local, target).items():
        for event in events[written_before.get(partition, 0):]:
            last_run[(event.provenance.partition, event.provenance.offset, event.provenance.index)] += 1
    assert set(last_run) == {key for key in expected if key[1] >= acknowledged[key[0]]}
    assert set(last_run.values()) == {1}

    # Progress went to stderr as plain lines (not a terminal).
    assert re.search(r"^replay resume-test: \d+/\d+ raw records \(\d+%\), \d+ events, 0 dead letters, \d+ records/s", first.log(), re.MULTILINE)
    finished = local.cli(*args, fixed=False)
    assert finished.returncode == 0 and "replay resume-test: already finished" in finished.stdout


def _written(history: History, topic: str) -> dict[int, list[TrackingEvent]]:
    """The events on ``topic`` per partition of ``topic``, in offset order."""
    decode = EventDeserializer(SchemaRegistryClient({"url": history.registry_url}))
    found: dict[int, list[TrackingEvent]] = {}
    for message in sorted(read_topic(history.bootstrap_servers, topic), key=lambda m: (m.partition(), m.offset())):
        found.setdefault(message.partition(), []).append(decode(message.value(), topic))
    return found
