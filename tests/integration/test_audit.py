"""``espstream audit`` against a real broker and a real normalizer: what it counts, what it calls missing."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream import __version__
from espstream.embedded import EmbeddedBroker
from espstream.normalizer.audit import audit
from espstream.normalizer.errors import MalformedPayload
from espstream.normalizer.records import dead_letter_headers
from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.times import parse_time
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EventDeserializer, EventSerializer
from tests.conftest import settings_from_env
from tests.faults.helpers import (
    committed_total,
    postmark_delivery,
    produce_raw,
    run_audit,
    sendgrid_batch,
    sns_subscription_confirmation,
    topics_env,
)
from tests.support.services import Service, count_records, eventually, read_topic

JSON = "application/json"


@dataclass
class Normalized:
    env: dict[str, str]
    bootstrap_servers: str


@pytest.fixture(scope="module")
def normalized(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Normalized]:
    """Topics of this module's own with a normalizer running on them."""
    env = topics_env(broker.bootstrap_servers, registry_url)
    normalizer = Service(["normalize"], env, tmp_path_factory.mktemp("audit") / "normalizer.log").start()
    yield Normalized(env, broker.bootstrap_servers)
    normalizer.stop()


def window(minute: int) -> tuple[int, list[str]]:
    """A one-minute stretch of raw records written long ago: their timestamp, and the audit's range for them."""
    start = datetime(2021, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    end = start + timedelta(minutes=1)
    return int(start.timestamp() * 1000) + 500, ["--from", start.isoformat(), "--to", end.isoformat()]


def audited_ok(env: dict[str, str], *args: str) -> dict:
    """The command's JSON report, once the normalizer has caught up with the range."""
    start, end = parse_time(args[1]), parse_time(args[3])
    settings = NormalizerSettings(**settings_from_env(env).model_dump(), normalizer_group=env["ESPSTREAM_NORMALIZER_GROUP"])
    eventually(lambda: audit(settings, start, end).ok, timeout=60, interval=0.5)
    # Its outcomes are written before its offsets are committed: wait for those too.
    raw_topic = env["ESPSTREAM_RAW_TOPIC"]
    everything = count_records(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], raw_topic)
    eventually(lambda: committed_total(env, env["ESPSTREAM_NORMALIZER_GROUP"], raw_topic) == everything, timeout=30)
    status, _, report = run_audit(env, *args, "--json")
    assert status == 0
    return report


def copy_normalized(normalized: Normalized, change: Callable[[TrackingEvent], TrackingEvent | None]) -> dict[str, str]:
    """The same pipeline with a normalized topic of its own: every event copied through ``change`` (None: left out)."""
    env = {**normalized.env, "ESPSTREAM_NORMALIZED_TOPIC": f"{normalized.env['ESPSTREAM_NORMALIZED_TOPIC']}.{uuid.uuid4().hex[:6]}"}
    ensure_topics(settings_from_env(env))
    registry = SchemaRegistryClient(settings_from_env(env).registry())
    decode, encode = EventDeserializer(registry), EventSerializer(registry, env["ESPSTREAM_NORMALIZED_TOPIC"])
    producer = Producer({"bootstrap.servers": normalized.bootstrap_servers})
    for message in read_topic(normalized.bootstrap_servers, normalized.env["ESPSTREAM_NORMALIZED_TOPIC"]):
        event = change(decode(message.value(), message.topic()))
        if event is not None:
            producer.produce(env["ESPSTREAM_NORMALIZED_TOPIC"], encode(event), key=message.key())
    assert producer.flush(30) == 0
    return env


def test_a_healthy_run_accounts_for_every_raw_record(normalized: Normalized) -> None:
    timestamp, span = window(0)
    produce_raw(
        normalized.bootstrap_servers,
        normalized.env["ESPSTREAM_RAW_TOPIC"],
        [
            *(("postmark", postmark_delivery(str(uuid.uuid4())), JSON, None) for _ in range(3)),
            ("sendgrid", sendgrid_batch(3), JSON, None),
            ("sendgrid", b"[]", JSON, None),  # an empty batch: nothing to normalize
            sns_subscription_confirmation(),
            ("postmark", b"this is {not json", JSON, None),
        ],
        timestamp,
    )

    report = audited_ok(normalized.env, *span)

    totals = report["totals"]
    assert (totals["raw_records"], totals["with_events"], totals["events"]) == (7, 4, 6)
    assert (totals["dead_lettered"], totals["empty_by_design"], totals["missing"]) == (1, 2, 0)
    assert (totals["duplicate_events"], totals["duplicate_dead_letters"]) == (0, 0)
    esps = report["esps"]
    assert (esps["postmark"]["raw_records"], esps["postmark"]["with_events"], esps["postmark"]["dead_lettered"]) == (4, 3, 1)
    assert (esps["sendgrid"]["events"], esps["sendgrid"]["empty_by_design"]) == (3, 1)
    assert esps["amazon_ses"]["empty_by_design"] == 1
    assert report["ok"] is True and report["examples"] == []

    status, text, _ = run_audit(normalized.env, *span)
    assert status == 0
    assert "OK: all 7 raw records have their outcome" in text


def test_repeated_events_and_dead_letters_are_counted_as_duplicates(normalized: Normalized) -> None:
    timestamp, span = window(2)
    message_id = str(uuid.uuid4())
    bad = b"not json either " + uuid.uuid4().hex.encode()
    produce_raw(
        normalized.bootstrap_servers,
        normalized.env["ESPSTREAM_RAW_TOPIC"],
        [("postmark", postmark_delivery(message_id), JSON, None), ("postmark", bad, JSON, None)],
        timestamp,
    )
    audited_ok(normalized.env, *span)

    # What a normalizer killed after producing, before committing, leaves behind once restarted:
    # the same events again, and the record dead-lettered again (at a later time).
    [event] = [m for m in read_topic(normalized.bootstrap_servers, normalized.env["ESPSTREAM_NORMALIZED_TOPIC"]) if m.key() == message_id.encode()]
    [source] = [m for m in read_topic(normalized.bootstrap_servers, normalized.env["ESPSTREAM_RAW_TOPIC"]) if m.value() == bad]
    [letter] = [m for m in read_topic(normalized.bootstrap_servers, normalized.env["ESPSTREAM_DLQ_TOPIC"]) if m.value() == bad]
    again = dead_letter_headers(source, "normalize", MalformedPayload("not valid JSON"))
    producer = Producer({"bootstrap.servers": normalized.bootstrap_servers})
    for copy in (event, event):
        producer.produce(copy.topic(), copy.value(), key=copy.key(), headers=copy.headers())
    producer.produce(letter.topic(), letter.value(), key=letter.key(), headers=again)
    # A letter a redrive moved, unchanged, to the end of the topic is the same failure: not a repeat.
    producer.produce(letter.topic(), letter.value(), key=letter.key(), headers=letter.headers())
    assert producer.flush(30) == 0

    status, _, report = run_audit(normalized.env, *span, "--json")
    assert status == 0
    totals = report["totals"]
    assert (totals["raw_records"], totals["with_events"], totals["dead_lettered"], totals["missing"]) == (2, 1, 1, 0)
    assert (totals["duplicate_events"], totals["duplicate_dead_letters"]) == (2, 1)


def test_exactly_the_records_whose_outcomes_are_gone_are_missing(normalized: Normalized) -> None:
    timestamp, span = window(4)
    message_ids = [str(uuid.uuid4()) for _ in range(6)]
    written = produce_raw(
        normalized.bootstrap_servers,
        normalized.env["ESPSTREAM_RAW_TOPIC"],
        [("postmark", postmark_delivery(message_id), JSON, None) for message_id in message_ids],
        timestamp,
    )
    audited_ok(normalized.env, *span)

    # The same pipeline, but with a normalized topic that lacks the events of two records.
    gone = {message_ids[1].encode(), message_ids[4].encode()}
    env = {**normalized.env, "ESPSTREAM_NORMALIZED_TOPIC": f"{normalized.env['ESPSTREAM_NORMALIZED_TOPIC']}.copy"}
    ensure_topics(settings_from_env(env))
    producer = Producer({"bootstrap.servers": normalized.bootstrap_servers})
    for message in read_topic(normalized.bootstrap_servers, normalized.env["ESPSTREAM_NORMALIZED_TOPIC"]):
        if message.key() not in gone:
            producer.produce(env["ESPSTREAM_NORMALIZED_TOPIC"], message.value(), key=message.key())
    assert producer.flush(30) == 0

    status, _, report = run_audit(env, *span, "--json")
    assert status == 1
    assert report["ok"] is False
    assert (report["totals"]["raw_records"], report["totals"]["missing"], report["totals"]["missing_committed"]) == (6, 2, 2)
    expected = sorted((w.partition, w.offset, w.request_id) for w in (written[1], written[4]))
    assert sorted((e["partition"], e["offset"], e["request_id"]) for e in report["examples"]) == expected
    assert all(e["committed"] and e["expected"] == "normalizes to 1 event(s)" for e in report["examples"])

    status, text, _ = run_audit(env, *span)
    assert status == 1
    assert "MISSING: 2 of 6 raw records have no outcome (2 of them committed by the normalizer)" in text
    for partition, offset, request_id in expected:
        assert f"{partition}:{offset}  request {request_id}" in text


def test_raw_records_nobody_normalized_are_all_missing(broker: EmbeddedBroker, registry_url: str) -> None:
    env = topics_env(broker.bootstrap_servers, registry_url)  # and no normalizer
    timestamp, span = window(0)
    written = produce_raw(
        broker.bootstrap_servers,
        env["ESPSTREAM_RAW_TOPIC"],
        [*(("postmark", postmark_delivery(str(uuid.uuid4())), JSON, None) for _ in range(4)), sns_subscription_confirmation()],
        timestamp,
    )
    # Records outside the range are not audited.
    later, _ = window(10)
    produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], [("postmark", postmark_delivery("x"), JSON, None)], later)

    status, text, _ = run_audit(env, *span, "--examples", "10")
    assert status == 1
    assert "MISSING: 4 of 5 raw records have no outcome (0 of them committed by the normalizer)" in text

    status, _, report = run_audit(env, *span, "--json", "--examples", "10")
    assert status == 1
    assert report["totals"]["empty_by_design"] == 1  # the SNS confirmation needs no outcome
    missing = {(e["partition"], e["offset"], e["request_id"]) for e in report["examples"]}
    assert missing == {(w.partition, w.offset, w.request_id) for w in written[:4]}  # not the confirmation
    assert all(not e["committed"] for e in report["examples"])

    everything = audit(NormalizerSettings(**settings_from_env(env).model_dump()))  # no range: every record
    assert (everything.ok, everything.totals.raw_records, everything.totals.missing) == (False, 6, 5)


def test_a_batch_whose_last_event_is_gone_is_missing(normalized: Normalized) -> None:
    timestamp, span = window(6)
    [batch, single] = produce_raw(
        normalized.bootstrap_servers,
        normalized.env["ESPSTREAM_RAW_TOPIC"],
        [("sendgrid", sendgrid_batch(3), JSON, None), ("postmark", postmark_delivery(str(uuid.uuid4())), JSON, None)],
        timestamp,
    )
    audited_ok(normalized.env, *span)

    def without_the_last_of_the_batch(event: TrackingEvent) -> TrackingEvent | None:
        source = event.provenance
        return None if (source.partition, source.offset, source.index) == (batch.partition, batch.offset, 2) else event

    env = copy_normalized(normalized, without_the_last_of_the_batch)

    status, _, report = run_audit(env, *span, "--json")
    assert status == 1
    assert report["ok"] is False
    totals = report["totals"]
    assert (totals["raw_records"], totals["with_events"], totals["events"]) == (2, 1, 3)
    assert (totals["missing"], totals["missing_committed"], totals["checked_by_index_only"]) == (1, 1, 0)
    [example] = report["examples"]
    assert (example["partition"], example["offset"], example["request_id"]) == (batch.partition, batch.offset, batch.request_id)
    assert example["expected"] == "normalizes to 3 event(s); found only indexes [0, 1]"

    status, text, _ = run_audit(env, *span)
    assert status == 1
    assert "MISSING: 1 of 2 raw records have no outcome (1 of them committed by the normalizer)" in text
    assert f"{batch.partition}:{batch.offset}  request {batch.request_id}" in text
    assert f"request {single.request_id}" not in text


def test_events_of_another_normalizer_version_are_checked_by_index_only(normalized: Normalized) -> None:
    timestamp, span = window(8)
    [batch, gapped, current] = produce_raw(
        normalized.bootstrap_servers,
        normalized.env["ESPSTREAM_RAW_TOPIC"],
        [("sendgrid", sendgrid_batch(3), JSON, None) for _ in range(3)],
        timestamp,
    )
    audited_ok(normalized.env, *span)

    # As an older normalizer might have written them: two events for the batch (it gives three now),
    # and for another batch events 1 and 2 without 0. The third batch keeps this version's events.
    def as_an_older_version(event: TrackingEvent) -> TrackingEvent | None:
        source = event.provenance
        record = (source.partition, source.offset)
        if record == (batch.partition, batch.offset):
            if source.index == 2:
                return None
        elif record == (gapped.partition, gapped.offset):
            if source.index == 0:
                return None
        else:
            return event
        source.normalizer_version = "0.0.1-older"
        return event

    env = copy_normalized(normalized, as_an_older_version)

    status, _, report = run_audit(env, *span, "--json")
    assert status == 1  # the gap is still seen
    totals = report["totals"]
    assert (totals["raw_records"], totals["with_events"], totals["checked_by_index_only"], totals["missing"]) == (3, 2, 1, 1)
    [example] = report["examples"]
    assert (example["partition"], example["offset"]) == (gapped.partition, gapped.offset)
    assert example["expected"] == "normalizes to 3 event(s); found only indexes [1, 2]"

    status, text, _ = run_audit(env, *span)
    assert status == 1
    assert f"1 record(s) with events checked by index only: other normalizer version (not {__version__})" in text
    assert f"request {current.request_id}" not in text and f"request {batch.request_id}" not in text
