"""The normalizer's dead letters: listed by ESP and error, shown as stored, redriven after a fix.

A real `espstream normalize` process dead-letters raw records produced to the
test's own raw topic: bodies no parser accepts (not JSON, an unknown ESP), and
webhooks whose events are bigger than the normalizer was allowed to write
(ESPSTREAM_MAX_BODY_BYTES set too low: the encode stage fails). The fix is the
operator's: the limit back to its default, then `espstream dlq redrive`. Those
letters become the events a normal run produces; the rest come back once per
redrive, their attempts counted.
"""

import base64
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.normalizer.core import normalize
from espstream.normalizer.records import event_key
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import raw
from espstream.schemas.avro import EventDeserializer
from tests.conftest import settings_from_env
from tests.support.services import Service, count_records, eventually, own_topics, read_topic

# The normalizer's body limit in these tests: its events may be 256 KiB over it (RECORD_OVERHEAD_BYTES).
SMALL_BODY_LIMIT = 1024
BIG = "x" * 280_000  # makes an event too big for that limit, a dead letter still fits


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    env = {**os.environ, **own_topics(broker.bootstrap_servers, registry_url, partitions=2)}
    ensure_topics(settings_from_env({k: v for k, v in env.items() if k.startswith("ESPSTREAM_")}))
    return env


@dataclasses.dataclass
class RawRecord:
    esp: str
    body: bytes
    content_type: str = "application/json"
    request_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    received_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))
    partition: int = -1  # where it landed on the raw topic
    offset: int = -1

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (raw.ESP, self.esp.encode()),
            (raw.CONTENT_TYPE, self.content_type.encode()),
            (raw.RECEIVED_AT, self.received_at.isoformat().encode()),
            (raw.REQUEST_ID, self.request_id.encode()),
            ("http-user-agent", b"test-esp/1.0"),
        ]


def postmark_delivery(details: str = "delivered") -> bytes:
    return json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": str(uuid.uuid4()),
            "Recipient": "alice@example.com",
            "DeliveredAt": "2026-11-23T16:33:54.9070259Z",
            "Details": details,
            "Metadata": {"customer": "42"},
        }
    ).encode()


def sendgrid_batch() -> bytes:
    message_id = str(uuid.uuid4())
    event = {"email": "bob@example.com", "timestamp": 1513299569, "anymail_id": message_id, "sg_event_id": ""}
    return json.dumps(
        [
            {**event, "event": "processed", "sg_event_id": uuid.uuid4().hex},
            {**event, "event": "delivered", "sg_event_id": uuid.uuid4().hex, "note": BIG},
            {**event, "event": "open", "sg_event_id": uuid.uuid4().hex},
        ]
    ).encode()


def produce_raw(env: dict[str, str], records: list[RawRecord]) -> None:
    """To the raw topic as the gateway writes them; notes where each landed."""
    producer = Producer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    for record in records:

        def landed(error, message, record=record):
            assert error is None, error
            record.partition, record.offset = message.partition(), message.offset()

        producer.produce(env["ESPSTREAM_RAW_TOPIC"], record.body, headers=record.headers(), on_delivery=landed)
    assert producer.flush(30) == 0


def espstream(env: dict[str, str], *args: str, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "espstream", *args], env=env, capture_output=True, text=text, timeout=120)


def letters(env: dict[str, str]) -> list[Message]:
    return sorted(read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], env["ESPSTREAM_DLQ_TOPIC"]), key=lambda m: (m.partition(), m.offset()))


def header(letter: Message, name: str) -> str:
    [value] = [v for n, v in letter.headers() if n == name]
    return value.decode()


def dead_lettered(env: dict[str, str], tmp_path: Path, records: list[RawRecord]) -> list[Message]:
    """``records`` through a normalizer whose body limit is too low; its dead letters."""
    produce_raw(env, records)
    normalizer = Service(["normalize"], {**env, "ESPSTREAM_MAX_BODY_BYTES": str(SMALL_BODY_LIMIT)}, tmp_path / "normalizer.log")
    normalizer.start()
    try:
        eventually(lambda: count_records(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], env["ESPSTREAM_DLQ_TOPIC"]) == len(records), timeout=60)
    finally:
        assert normalizer.stop() == 0, normalizer.log()
    return letters(env)


@pytest.fixture
def records() -> dict[str, RawRecord]:
    return {
        "big-postmark-1": RawRecord("postmark", postmark_delivery(BIG)),
        "big-postmark-2": RawRecord("postmark", postmark_delivery(BIG + "y")),
        "big-sendgrid": RawRecord("sendgrid", sendgrid_batch()),
        "postmark-not-json": RawRecord("postmark", b"this is {not json " + uuid.uuid4().hex.encode()),
        "postmark-binary": RawRecord("postmark", b"\x00\xff\xfe binary " + os.urandom(8)),
        "mailgun-not-json": RawRecord("mailgun", b"<xml>" + uuid.uuid4().hex.encode() + b"</xml>"),
        "unknown-esp": RawRecord("nosuchesp", b"{}"),
    }


def letter_of(all_letters: list[Message], record: RawRecord) -> Message:
    [letter] = [m for m in all_letters if m.value() == record.body]
    return letter


def listing(env: dict[str, str], *args: str) -> dict:
    listed = espstream(env, "dlq", "list", "--json", *args)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def group_counts(listed: dict) -> dict[tuple[str, str, str], int]:
    return {(g["esp"], g["stage"], g["error_class"]): g["letters"] for g in listed["groups"]}


def test_list_counts_letters_by_esp_and_error_and_show_prints_one_as_stored(
    env: dict[str, str], tmp_path: Path, records: dict[str, RawRecord]
) -> None:
    stored = dead_lettered(env, tmp_path, list(records.values()))
    dlq = env["ESPSTREAM_DLQ_TOPIC"]

    listed = listing(env)
    assert (listed["topic"], listed["pending_only"], listed["letters"]) == (dlq, True, 7)
    assert group_counts(listed) == {
        ("postmark", "encode", "EncodeError"): 2,
        ("postmark", "normalize", "MalformedPayload"): 2,
        ("sendgrid", "encode", "EncodeError"): 1,
        ("mailgun", "normalize", "MalformedPayload"): 1,
        ("nosuchesp", "normalize", "UnsupportedEsp"): 1,
    }
    for group in listed["groups"]:
        mine = [m for m in stored if (header(m, "esp"), header(m, "dlq-stage"), header(m, "dlq-error-class"))
                == (group["esp"], group["stage"], group["error_class"])]
        partitions = {m.partition() for m in mine}
        assert group["offsets"] == {
            str(p): [min(m.offset() for m in mine if m.partition() == p), max(m.offset() for m in mine if m.partition() == p)]
            for p in partitions
        }
        assert group["attempts"] == {"1": group["letters"]}
        line = header(mine[0], "dlq-error-message").splitlines()[0]
        assert group["example"] == (line if len(line) <= 80 else line[:79] + "…")

    table = espstream(env, "dlq", "list")
    assert table.returncode == 0, table.stderr
    heading, *rows, total = table.stdout.splitlines()
    assert heading.split()[:7] == ["ESP", "STAGE", "ERROR", "CLASS", "LETTERS", "ATTEMPTS", "OFFSETS"]
    assert Counter((row.split()[0], row.split()[1], row.split()[2], row.split()[3]) for row in rows) == Counter(
        (esp, stage, error_class, str(count)) for (esp, stage, error_class), count in group_counts(listed).items()
    )
    assert total == f"7 pending dead letters on {dlq}"

    one_per_line = espstream(env, "dlq", "list", "--letters")
    assert one_per_line.returncode == 0, one_per_line.stderr
    assert sorted((l["partition"], l["offset"], l["esp"], l["error-class"]) for l in map(json.loads, one_per_line.stdout.splitlines())) == sorted(
        (m.partition(), m.offset(), header(m, "esp"), header(m, "dlq-error-class")) for m in stored
    )

    mailgun = letter_of(stored, records["mailgun-not-json"])
    shown = espstream(env, "dlq", "show", f"{mailgun.partition()}:{mailgun.offset()}")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:3] == [f"topic: {dlq}", f"partition: {mailgun.partition()}", f"offset: {mailgun.offset()}"]
    start = lines.index(f"headers ({len(mailgun.headers())}):")
    assert lines[start + 1 : start + 1 + len(mailgun.headers())] == [f"  {n}: {v.decode()}" for n, v in mailgun.headers()]
    assert "  dlq-source-topic: " + env["ESPSTREAM_RAW_TOPIC"] in lines
    assert shown.stdout.endswith(f"body ({len(mailgun.value())} bytes, UTF-8 text):\n{mailgun.value().decode()}\n")

    binary = letter_of(stored, records["postmark-binary"])
    position = f"{binary.partition()}:{binary.offset()}"
    shown = espstream(env, "dlq", "show", position)
    assert shown.returncode == 0, shown.stderr
    notice, encoded = shown.stdout.splitlines()[-2:]
    assert "not UTF-8 text" in notice and "base64" in notice
    assert base64.b64decode(encoded) == records["postmark-binary"].body
    exact = espstream(env, "dlq", "show", position, "--raw", text=False)
    assert (exact.returncode, exact.stdout) == (0, records["postmark-binary"].body)

    missing = espstream(env, "dlq", "show", "0:100000")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert f"no record at 0:100000 on {dlq}" in missing.stderr


def redrive(env: dict[str, str], *args: str, failing: int = 0) -> tuple[list[dict], str]:
    """The outcomes and the summary of a redrive in which ``failing`` letters fail again (exit 1 when any do)."""
    run = espstream(env, "dlq", "redrive", *args)
    assert run.returncode == (1 if failing else 0), run.stderr
    if failing:
        assert f"{failing} letters failed again" in run.stderr or f"{failing} letter failed again" in run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()], run.stderr


def test_redrive_turns_fixed_letters_into_the_events_of_a_normal_run_and_counts_the_rest_once_per_run(
    env: dict[str, str], tmp_path: Path, records: dict[str, RawRecord]
) -> None:
    bootstrap = env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    stored = dead_lettered(env, tmp_path, list(records.values()))
    fixable = {name: records[name] for name in ("big-postmark-1", "big-postmark-2", "big-sendgrid")}
    hopeless = {name: record for name, record in records.items() if name not in fixable}
    by_body = {record.body: record for record in records.values()}

    # The limit back to its default: the encode failures go through, the others fail again.
    outcomes, summary = redrive(env, failing=4)
    assert Counter(o["result"] for o in outcomes) == {"normalized": 3, "dead-lettered again": 4}
    for outcome in outcomes:
        letter = [m for m in stored if (m.partition(), m.offset()) == (outcome["partition"], outcome["offset"])][0]
        record = by_body[letter.value()]
        assert outcome["source"] == f"{env['ESPSTREAM_RAW_TOPIC']}[{record.partition}]@{record.offset}"
        assert outcome["attempts"] == 2
        if record in fixable.values():
            assert outcome["result"] == "normalized"
        else:
            assert (outcome["result"], outcome["stage"], outcome["error_class"]) == (
                "dead-lettered again", "normalize", header(letter, "dlq-error-class")
            )
    assert "postmark: 2 normalized (2 events), 2 dead-lettered again" in summary
    assert "sendgrid: 1 normalized (3 events)" in summary

    # The events a normal run produces: same keys, ids and content, provenance at the raw record.
    decode = EventDeserializer(SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}))
    produced = read_topic(bootstrap, env["ESPSTREAM_NORMALIZED_TOPIC"])
    events = [(m.key(), decode(m.value(), m.topic())) for m in produced]
    assert len(events) == 5
    for record in fixable.values():
        expected = normalize(record.esp, record.body, record.content_type, {"user-agent": "test-esp/1.0"})
        mine = sorted(
            ((key, e) for key, e in events if e.provenance.offset == record.offset and e.provenance.partition == record.partition),
            key=lambda pair: pair[1].provenance.index,
        )
        assert [dataclasses.replace(e, provenance=None) for _, e in mine] == expected
        assert [key for key, _ in mine] == [event_key(e) for e in expected]
        for index, (_, event) in enumerate(mine):
            assert (event.provenance.esp, event.provenance.topic, event.provenance.index) == (record.esp, env["ESPSTREAM_RAW_TOPIC"], index)
            assert (event.provenance.request_id, event.provenance.received_at) == (record.request_id, record.received_at)
    assert {o["dedupe_ids"][0] for o in outcomes if o["result"] == "normalized"} <= {e.dedupe_id for _, e in events}

    # Each failing letter came back once, attempts 2, the raw record's value, headers and position.
    again = [m for m in letters(env) if (m.partition(), m.offset()) not in {(s.partition(), s.offset()) for s in stored}]
    assert sorted(m.value() for m in again) == sorted(r.body for r in hopeless.values())
    for letter in again:
        original = letter_of(stored, by_body[letter.value()])
        assert header(letter, "dlq-attempts") == "2"
        assert [(n, v) for n, v in letter.headers() if not n.startswith("dlq-")] == [
            (n, v) for n, v in original.headers() if not n.startswith("dlq-")
        ]
        for name in ("dlq-source-topic", "dlq-source-partition", "dlq-source-offset", "dlq-stage", "dlq-error-class"):
            assert header(letter, name) == header(original, name)
    listed = listing(env)
    assert listed["letters"] == 4
    assert {g["esp"]: g["attempts"] for g in listed["groups"] if g["esp"] != "postmark"} == {"mailgun": {"2": 1}, "nosuchesp": {"2": 1}}

    # A second run: the same four once more, attempts 3; no event twice, no letter twice.
    outcomes, _ = redrive(env, failing=4)
    assert sorted((o["result"], o["attempts"], o["esp"]) for o in outcomes) == sorted(
        ("dead-lettered again", 3, r.esp) for r in hopeless.values()
    )
    assert count_records(bootstrap, env["ESPSTREAM_NORMALIZED_TOPIC"]) == 5
    assert count_records(bootstrap, env["ESPSTREAM_DLQ_TOPIC"]) == 7 + 4 + 4
    listed = listing(env)
    assert listed["letters"] == 4
    assert all(g["attempts"] == {"3": g["letters"]} for g in listed["groups"])
    assert listing(env, "--all")["letters"] == 15

    # Only Mailgun's: the others stay pending, untouched, whatever their place in the partitions.
    outcomes, summary = redrive(env, "--esp", "Mailgun", failing=1)
    assert sorted((o["esp"], o["result"], o["attempts"]) for o in outcomes) == [
        ("mailgun", "dead-lettered again", 4),
        ("nosuchesp", "left pending", 3),
        ("postmark", "left pending", 3),
        ("postmark", "left pending", 3),
    ]
    # A letter left pending before a redriven one in its partition was copied to the end, unchanged.
    now = {(m.partition(), m.offset()): m for m in letters(env)}
    for outcome in outcomes:
        if "moved to" in (outcome["note"] or ""):
            copy = now[tuple(int(n) for n in outcome["note"].rsplit(" ", 1)[1].split(":"))]
            original = now[(outcome["partition"], outcome["offset"])]
            assert (copy.value(), copy.headers()) == (original.value(), original.headers())
    pending = espstream(env, "dlq", "list", "--letters")
    assert sorted((l["esp"], l["attempts"]) for l in map(json.loads, pending.stdout.splitlines())) == [
        ("mailgun", "4"), ("nosuchesp", "3"), ("postmark", "3"), ("postmark", "3")
    ]

    # Letters tried three times or more are left alone: nothing is written.
    before = count_records(bootstrap, env["ESPSTREAM_DLQ_TOPIC"])
    outcomes, _ = redrive(env, "--max-attempts", "3")
    assert {o["result"] for o in outcomes} == {"left pending"} and len(outcomes) == 4
    assert all(o["note"].startswith("tried") for o in outcomes)
    assert count_records(bootstrap, env["ESPSTREAM_DLQ_TOPIC"]) == before
    assert listing(env)["letters"] == 4


def test_discard_marks_letters_done_with_the_reason_kept_for_list_all_and_show(
    env: dict[str, str], tmp_path: Path, records: dict[str, RawRecord]
) -> None:
    hopeless = [records[name] for name in ("postmark-not-json", "mailgun-not-json", "postmark-binary", "unknown-esp")]
    stored = dead_lettered(env, tmp_path, hopeless)
    target = letter_of(stored, records["unknown-esp"])
    where = f"{target.partition()}:{target.offset()}"
    before = [m for m in stored if m.partition() == target.partition() and m.offset() < target.offset()]

    done = espstream(env, "dlq", "discard", where, "--reason", "no such ESP: never ours", "--by", "ops-alice")
    assert done.returncode == 0, done.stderr
    outcomes = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(o["partition"], o["offset"], o["result"]) for o in outcomes if o["result"] == "discarded"] == [
        (target.partition(), target.offset(), "discarded")
    ]
    # Pending letters before it in its partition were copied to the end: still pending.
    assert sorted(o["offset"] for o in outcomes if o["result"] == "left pending") == [m.offset() for m in before]

    pending = [json.loads(line) for line in espstream(env, "dlq", "list", "--letters").stdout.splitlines()]
    assert sorted(l["esp"] for l in pending) == ["mailgun", "postmark", "postmark"]
    assert listing(env)["letters"] == 3
    everything = [json.loads(line) for line in espstream(env, "dlq", "list", "--all", "--letters").stdout.splitlines()]
    [mark] = [l for l in everything if (l["partition"], l["offset"]) == (target.partition(), target.offset())]
    assert (mark["discarded-reason"], mark["discarded-by"]) == ("no such ESP: never ours", "ops-alice")
    assert datetime.fromisoformat(mark["discarded-at"]).tzinfo is not None
    assert all("discarded-reason" not in l for l in everything if l is not mark)
    table = espstream(env, "dlq", "list", "--all").stdout
    assert "DISCARDED" in table.splitlines()[0]
    assert [line for line in table.splitlines() if "nosuchesp" in line][0].count("no such ESP: never ours") == 1
    shown = espstream(env, "dlq", "show", where)
    assert shown.stdout.splitlines()[-1].endswith("by ops-alice: no such ESP: never ours")

    # Done: not discarded twice, not redriven.
    again = espstream(env, "dlq", "discard", where, "--reason", "twice")
    assert again.returncode == 1 and f"no pending letter at {where}" in again.stderr
    outcomes, _ = redrive(env, failing=3)
    assert sorted(o["esp"] for o in outcomes) == ["mailgun", "postmark", "postmark"]
