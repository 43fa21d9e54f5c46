"""``espstream export`` over pre-loaded normalized events: events per second into Avro files.

``measure()`` loads ``events`` normalized events (Postmark webhooks as the
normalizer encodes them, their timestamps spread over a few days) into a topic
of their own, then times one export of all of them. Its anchor, measured just
before on the same records: a bare librdkafka consumer reading them to the end
of every partition and doing nothing else, i.e. what the broker serves. ``python
-m benchmarks.export_bench [EVENTS]`` runs it once on a fresh embedded broker.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.consumers.export import Exporter
from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import create_missing
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import EventSerializer
from espstream.testing import events_from_webhook

from .payloads import postmark_body
from .topic_count import read_count

PARTITIONS = 6
TEMPLATES = 400  # distinct webhook bodies; the events repeat them with their own ids and times
SPREAD = timedelta(days=3)
FIRST_DAY = datetime(2026, 11, 21, tzinfo=UTC)


def normalized_events(count: int) -> list[TrackingEvent]:
    """``count`` events as the normalizer makes them of Postmark webhooks, timestamps spread over SPREAD."""
    templates = [event for number in range(TEMPLATES) for event in events_from_webhook("postmark", postmark_body(number))]
    step = SPREAD / max(count, 1)
    received = datetime.now(UTC)
    events = []
    for number in range(count):
        template = templates[number % len(templates)]
        events.append(
            replace(
                template,
                dedupe_id=f"{uuid.UUID(int=number).hex}-0",
                timestamp=FIRST_DAY + step * number,
                provenance=Provenance(
                    esp="postmark", topic="tracking.raw", partition=number % PARTITIONS, offset=number, index=0,
                    received_at=received, request_id=uuid.UUID(int=number + 1).hex, normalizer_version="bench",
                ),
            )
        )
    return events


def preload(bootstrap_servers: str, registry_url: str, topic: str, count: int) -> int:
    """Write ``count`` normalized events to a new ``topic``; the bytes of their values."""
    create_missing(CommonSettings(kafka_bootstrap_servers=bootstrap_servers), [NewTopic(topic, PARTITIONS, 1)])
    serialize = EventSerializer(SchemaRegistryClient({"url": registry_url}), topic)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )
    value_bytes = 0
    for event in normalized_events(count):
        value = serialize(event)
        value_bytes += len(value)
        while True:
            try:
                producer.produce(topic, value, key=event.message_id.encode() if event.message_id else None)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("pre-loading the normalized topic: events not acknowledged")
    stored = read_count(bootstrap_servers, topic, count)
    if stored != count:
        raise RuntimeError(f"pre-loading the normalized topic: {stored} records stored, {count} written")
    return value_bytes


def bare_read_seconds(bootstrap_servers: str, topic: str) -> tuple[int, float]:
    """Records read and seconds taken by a consumer reading ``topic`` to the end of every partition, as the export does."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"espstream-bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        started = time.perf_counter()
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending, records = set(partitions), 0
        while pending:
            for message in consumer.consume(5000, timeout=0.5):
                error = message.error()
                if error is None:
                    records += message.value() is not None
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
        return records, time.perf_counter() - started
    finally:
        consumer.close()


def measure(bootstrap_servers: str, registry_url: str, events: int, out_dir: Path | str) -> dict:
    """Pre-load ``events`` events into a topic of their own, export them all into ``out_dir``; the figures."""
    topic = f"bench-export-{uuid.uuid4().hex[:8]}.normalized"
    value_bytes = preload(bootstrap_servers, registry_url, topic, events)
    settings = CommonSettings(kafka_bootstrap_servers=bootstrap_servers, schema_registry_url=registry_url)
    anchor_records, anchor_seconds = bare_read_seconds(bootstrap_servers, topic)
    if anchor_records != events:
        raise RuntimeError(f"the bare read found {anchor_records} records of {events}")
    exporter = Exporter(settings, out_dir, topic=topic)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    summary = exporter.run()
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    if summary.events != events:
        raise RuntimeError(f"exported {summary.events} events of {events}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "events": events,
        "seconds": seconds,
        "per_second": events / seconds,
        "anchor_seconds": anchor_seconds,
        "anchor_per_second": events / anchor_seconds,
        "ratio_to_anchor": anchor_seconds / seconds,
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu / events * 1e6,
        "files": len(summary.files),
        "dates": len(summary.dates),
        "record_bytes": value_bytes,
        "file_bytes": summary.bytes,
        "compression_ratio": summary.bytes / value_bytes,
        "load_average_before": load_before,
    }


def main(argv: list[str] | None = None) -> int:
    from .stack import fresh_broker, registry

    parser = argparse.ArgumentParser(prog="python -m benchmarks.export_bench", description=__doc__)
    parser.add_argument("events", type=int, nargs="?", default=50_000, help="events to export (default 50,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="espstream-export-bench-") as work:
        log_dir = Path(work)
        with fresh_broker(log_dir, "export") as (broker, broker_env), registry(log_dir, "export", broker_env) as (_, env):
            result = measure(broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], args.events, log_dir / "out")
    print(json.dumps(result))
    print(f"{result['per_second']:,.0f} events/s ({result['cpu_us_per_event']:.1f} µs CPU per event), bare read "
          f"{result['anchor_per_second']:,.0f} records/s, "
          f"{result['files']} files, {result['compression_ratio']:.1%} of the records' bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
