"""Consumer runner vs two plain loops over the same pre-loaded normalized events.

The anchor is consume + fastavro's schemaless_reader to a dict (the decoding at
its bare cost); beside it, consume + EventDeserializer to a TrackingEvent.

One fresh broker and registry for the whole comparison: the events are written
once, and every run reads all of them as a consumer group of its own.
"""

import json
import os
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream import __version__
from espstream.normalizer.core import normalize
from espstream.normalizer.records import event_key
from espstream.plumbing.config import CommonSettings
from espstream.schemas import Provenance, raw
from espstream.schemas.avro import EventSerializer

from .payloads import raw_records
from .stack import fresh_broker, registry, run_json_worker
from .topic_count import read_count

WORKER_DEADLINE_SECONDS = 180.0
# The loops of benchmarks/consumer_workers.py, in the order each round runs them.
LOOPS = ("fastavro", "plain", "runner")


def preload_events(bootstrap_servers: str, registry_url: str, topic: str, count: int) -> float:
    """``count`` normalized events on ``topic``, made as the normalizer makes them; the seconds it took."""
    serialize = EventSerializer(SchemaRegistryClient({"url": registry_url}), topic)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )
    started = time.perf_counter()
    written = 0
    for offset, (value, headers) in enumerate(raw_records(count)):
        webhook = raw.RawWebhook.from_record(value, headers)
        for index, event in enumerate(normalize(webhook.esp, webhook.body, webhook.content_type, webhook.http_headers)):
            event.provenance = Provenance(
                esp=webhook.esp, topic="tracking.raw", partition=0, offset=offset, index=index,
                received_at=webhook.received_at, request_id=webhook.request_id, normalizer_version=__version__,
            )
            while True:
                try:
                    producer.produce(topic, serialize(event), key=event_key(event))
                    break
                except BufferError:
                    producer.poll(0.05)
            written += 1
    if producer.flush(120) != 0:
        raise RuntimeError("pre-loading the normalized topic: events not acknowledged")
    if written != count:
        raise RuntimeError(f"{count} webhooks made {written} events, expected one each")
    stored = read_count(bootstrap_servers, topic, count)
    if stored != count:
        raise RuntimeError(f"pre-loading the normalized topic: {stored} events stored, {count} written")
    return time.perf_counter() - started


def run(events: int, rounds: int, log_dir: Path, progress=print) -> dict:
    """``rounds`` interleaved rounds (fastavro loop, plain loop, runner) over ``events`` pre-loaded events."""
    runs: dict[str, list[dict]] = {kind: [] for kind in LOOPS}
    with fresh_broker(log_dir, "consumer") as (broker, broker_env):
        with registry(log_dir, "consumer", broker_env) as (_, env):
            topic = CommonSettings(kafka_bootstrap_servers=broker.bootstrap_servers).normalized_topic
            preload_seconds = preload_events(broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], topic, events)
            progress(f"  consumer: {events:,} events pre-loaded ({preload_seconds:.0f} s)")
            for index in range(rounds):
                for kind in LOOPS:
                    started = time.monotonic()
                    load_before = os.getloadavg()[0]
                    output = run_json_worker(
                        "benchmarks.consumer_workers",
                        [kind, f"bench-{kind}-{index}", str(events), str(WORKER_DEADLINE_SECONDS)],
                        {**os.environ, **env},
                        log_dir / f"consumer-{kind}.log",
                        timeout=WORKER_DEADLINE_SECONDS + 60,
                    )
                    result = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
                    result["load_average_before"] = load_before
                    runs[kind].append(result)
                    progress(f"  consumer round {index + 1}/{rounds} {kind:8s} {result['per_second']:9,.0f} events/s "
                             f"{result['cpu_us_per_event']:6.1f} µs CPU/event ({time.monotonic() - started:.0f} s)")
    return {"events": events, "preload_seconds": preload_seconds, **runs}
