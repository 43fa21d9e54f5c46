"""Where the normalizer's time goes, per event: the real service with a clock around each stage.

Run as a worker kind of ``benchmarks.stream_workers`` ("normalizer-stages"),
over the same kind of fresh broker and pre-loaded raw topic as the timed run.
Each stage is timed with perf_counter around the function that does it; nested
stages are reported exclusive of their children. The clocks cost about 0.3 µs
per call, a few µs per event in all, which the "total" includes.
"""

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

# (stage, what it is, parent stage whose time includes it)
STAGES: list[tuple[str, str, str | None]] = [
    ("consume", "Consumer.consume() after the first batch (waiting for and fetching records)", None),
    ("raw_decode", "RawWebhook.from_record: headers -> str, received_at parsed", None),
    ("normalize", "normalize() minus JSON parsing: Postmark mapping, timestamps, dedupe id", None),
    ("json_parse", "WebhookRequest.json: the body read (orjson where it reads as json.loads)", "normalize"),
    ("encode", "_encode minus serialization: Provenance, key, size check", None),
    ("serialize", "EventSerializer minus the two below: framing, AvroSerializer's per-call work if used", "encode"),
    ("to_record", "the record dict for fastavro minus json.dumps: union branches, timestamps, metadata", "serialize"),
    ("json_dump", "json.dumps(esp_event) inside the record dict", "to_record"),
    ("avro_write", "the Avro body: fastavro's schemaless_writer", "serialize"),
    ("produce", "Producer.produce (librdkafka enqueue)", None),
    ("flush", "Producer.flush per batch (waits for the broker's acks)", None),
    ("commit", "Consumer.commit, synchronous, per batch", None),
]


class StageClock:
    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.armed = False  # consume() is only counted once the first batch arrived

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += clock() - started
                calls[stage] += 1

        return timed

    def exclusive(self) -> dict[str, float]:
        """Each stage's seconds without its children's."""
        result = dict(self.seconds)
        for stage, _, parent in STAGES:
            if parent is not None and stage in result and parent in result:
                result[parent] -= result[stage]
        return result


class _Proxy:
    """``target`` with some attributes replaced."""

    def __init__(self, target: Any, **replaced: Any):
        self._target = target
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__dict__["call"](*args, **kwargs)


def instrument_modules(clock: StageClock) -> None:
    """Clocks on the module-level functions the service calls; before the service is built."""

    import espstream.normalizer.records
    import espstream.normalizer.request
    import espstream.schemas.avro
    import espstream.schemas.raw

    raw_webhook = espstream.schemas.raw.RawWebhook
    raw_webhook.from_record = classmethod(clock.wrap("raw_decode", raw_webhook.from_record.__func__))
    espstream.normalizer.records.normalize = clock.wrap("normalize", espstream.normalizer.records.normalize)
    request = espstream.normalizer.request.WebhookRequest
    request.json = clock.wrap("json_parse", request.json)
    espstream.schemas.avro._writer_record = clock.wrap("to_record", espstream.schemas.avro._writer_record)
    espstream.schemas.avro.json = _Proxy(json, dumps=clock.wrap("json_dump", json.dumps))
    espstream.schemas.avro.schemaless_writer = clock.wrap("avro_write", espstream.schemas.avro.schemaless_writer)


def instrument_service(service: Any, clock: StageClock) -> None:
    """Clocks on the service's own collaborators (the record normalizer it shares with replays and redrives)."""
    record_normalizer = service.normalize_record
    record_normalizer._encode = clock.wrap("encode", record_normalizer._encode)
    serialize = record_normalizer.serialize
    record_normalizer.serialize = _Proxy(serialize, call=clock.wrap("serialize", serialize.__call__))
    producer = service.producer
    service.producer = _Proxy(
        producer, produce=clock.wrap("produce", producer.produce), flush=clock.wrap("flush", producer.flush)
    )
    consumer = service.consumer
    timed_consume = clock.wrap("consume", consumer.consume)

    def consume(*args: Any, **kwargs: Any) -> Any:
        return timed_consume(*args, **kwargs) if clock.armed else consumer.consume(*args, **kwargs)

    service.consumer = _Proxy(consumer, consume=consume, commit=clock.wrap("commit", consumer.commit))


def breakdown(clock: StageClock, records: int, wall_seconds: float) -> list[dict[str, Any]]:
    """Rows: stage, µs per event, share of the wall time."""
    exclusive = clock.exclusive()
    rows = []
    for stage, what, _ in STAGES:
        seconds = exclusive.get(stage, 0.0)
        rows.append({"stage": stage, "what": what, "us_per_event": seconds / records * 1e6, "share": seconds / wall_seconds})
    rest = wall_seconds - sum(exclusive.get(stage, 0.0) for stage, _, _ in STAGES)
    rows.append(
        {
            "stage": "loop_rest",
            "what": "everything else: the service's loop, delivery callbacks, garbage collection, the clocks",
            "us_per_event": rest / records * 1e6,
            "share": rest / wall_seconds,
        }
    )
    return rows
