"""CPU per event of each stage of the pipeline, beside the physical anchor of that stage, in one process.

Every stage runs over the same realistic Postmark records (benchmarks.payloads), timed
with ``time.process_time`` (this process's CPU, every thread: librdkafka's too), rounds
interleaved: anchor, stage, anchor, stage. The stages are espstream's own functions; the
anchors are what the stage cannot do better than:

- body parse: ``json.loads`` (what anymail uses) and ``orjson.loads`` of the same bodies;
- ESP mapping: django-anymail's own ``PostmarkTrackingWebhookView.esp_to_anymail_event``
  on the same parsed body;
- Avro encode / decode: fastavro's bare ``schemaless_writer`` / ``schemaless_reader`` of the
  same record, given as a plain dict (``event_to_record``) with the schema parsed once;
- produce / consume: librdkafka's ``Producer.produce`` (+ flush) and ``Consumer.consume``
  of the same records, against a fresh embedded broker.
"""

import io
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from fastavro import schemaless_reader, schemaless_writer

from espstream import __version__
from espstream.normalizer.core import normalize
from espstream.normalizer.esps import postmark
from espstream.schemas import Provenance, raw
from espstream.schemas.avro import avro_body, event_to_record, parsed_schema, record_to_event
from espstream.schemas.webhook_body import json_like_stdlib

from .payloads import raw_records
from .stack import fresh_broker
from .stream_bench import produce_all

RECORDS = 20_000
ROUNDS = 3


def _cpu_us(run: Callable[[], object], count: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / count * 1e6


def _pairs(anchor: Callable[[], object], stage: Callable[[], object], count: int, rounds: int) -> dict[str, float]:
    """Median CPU µs per event of ``anchor`` and ``stage``, rounds interleaved."""
    anchors, stages = [], []
    for _ in range(rounds):
        anchors.append(_cpu_us(anchor, count))
        stages.append(_cpu_us(stage, count))
    return {"anchor_us": statistics.median(anchors), "stage_us": statistics.median(stages)}


def _with_provenance(events: list[Any]) -> None:
    for offset, event in enumerate(events):
        event.provenance = Provenance(
            esp="postmark", topic="tracking.raw", partition=0, offset=offset, index=0,
            received_at=None, request_id="cost-model", normalizer_version=__version__,
        )


def measure_cpu_stages(count: int = RECORDS, rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """The pure-Python stages (no broker)."""
    records = list(raw_records(count))
    bodies = [value for value, _ in records]
    webhooks = [raw.RawWebhook.from_record(value, headers) for value, headers in records]
    parsed = [json.loads(body) for body in bodies]
    events = [event for webhook in webhooks for event in normalize(webhook.esp, webhook.body, webhook.content_type, webhook.http_headers)]
    _with_provenance(events)
    schema = parsed_schema()
    plain_records = [event_to_record(event) for event in events]
    bodies_avro = [avro_body(event) for event in events]

    def bare_write() -> None:
        for record in plain_records:
            buffer = io.BytesIO()
            schemaless_writer(buffer, schema, record)

    def bare_read() -> None:
        for body in bodies_avro:
            schemaless_reader(io.BytesIO(body), schema, None)

    def our_read() -> None:  # what a consumer pays beyond the bare read: the TrackingEvent
        for body in bodies_avro:
            record_to_event(schemaless_reader(io.BytesIO(body), schema, None))

    anymail = _anymail_mapping()
    results = {
        "raw_decode": _pairs(lambda: None, lambda: [raw.RawWebhook.from_record(v, h) for v, h in records], count, rounds),
        "parse_stdlib": _pairs(lambda: [orjson.loads(b) for b in bodies], lambda: [json.loads(b) for b in bodies], count, rounds),
        "parse": _pairs(lambda: [orjson.loads(b) for b in bodies], lambda: [json_like_stdlib(b, json.loads) for b in bodies], count, rounds),
        "mapping": _pairs(
            (lambda: [anymail(item) for item in parsed]) if anymail else (lambda: None),
            lambda: [postmark.esp_to_event(item) for item in parsed],
            count,
            rounds,
        ),
        "normalize": _pairs(
            lambda: [orjson.loads(b) for b in bodies],
            lambda: [normalize(w.esp, w.body, w.content_type, w.http_headers) for w in webhooks],
            count,
            rounds,
        ),
        "encode": _pairs(bare_write, lambda: [avro_body(event) for event in events], len(events), rounds),
        "decode": _pairs(bare_read, our_read, len(events), rounds),
    }
    results["raw_decode"]["anchor_us"] = None  # no anchor: timed alone
    results["normalize"]["anchor_us"] = None  # the sum of parse and mapping (and the dedupe id), each beside its own
    if anymail is None:
        results["mapping"]["anchor_us"] = None
    return results


def _anymail_mapping() -> Callable[[dict], object] | None:
    """django-anymail's Postmark mapping of one parsed event (its view's own method), or None without anymail."""
    try:
        from tests.support.parity.oracle import anymail_view
    except ImportError:  # the test extra is not installed
        return None
    return anymail_view("postmark").esp_to_anymail_event


def measure_kafka(log_dir: Path, count: int = RECORDS * 5, rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """librdkafka's produce and consume per record of the raw records, on a fresh embedded broker."""
    records = list(raw_records(count))
    produce, consume = [], []
    with fresh_broker(log_dir, "cost-model") as (broker, _env):
        for index in range(rounds):
            topic = f"cost-model-{index}"
            producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all", "enable.idempotence": True,
                                 "linger.ms": 5, "delivery.report.only.error": True,
                                 "queue.buffering.max.messages": 500_000, "queue.buffering.max.kbytes": 1_048_576})

            produce.append(_cpu_us(lambda: produce_all(producer, topic, records), count))
            consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": f"cost-model-{index}",
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False})
            consumer.subscribe([topic])
            while not consumer.consume(1, timeout=1.0):  # joined and fetching; the join is not counted
                pass
            seen = 1
            started = time.process_time()
            idle_since = time.monotonic()
            while seen < count and time.monotonic() - idle_since < 10:
                batch = consumer.consume(500, timeout=0.5)
                if batch:
                    idle_since = time.monotonic()
                    seen += sum(1 for message in batch if message.error() is None)
                    for message in batch:
                        message.value(), message.headers()
            consume.append((time.process_time() - started) / max(seen - 1, 1) * 1e6)
            consumer.close()
    return {
        "produce": {"anchor_us": statistics.median(produce)},
        "consume": {"anchor_us": statistics.median(consume)},
    }


def run(log_dir: Path, count: int = RECORDS, rounds: int = ROUNDS) -> dict:
    return {"records": count, "rounds": rounds, "cpu": measure_cpu_stages(count, rounds), "kafka": measure_kafka(log_dir, count * 5, rounds)}


if __name__ == "__main__":
    import tempfile

    print(json.dumps(run(Path(tempfile.mkdtemp()), 5000, 1), indent=1))
