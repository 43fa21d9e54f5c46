"""The timed consume loops over pre-loaded normalized events, each in a process of its own.

``python -m benchmarks.consumer_workers runner|plain|fastavro GROUP EXPECTED DEADLINE_SECONDS``
reads ESPSTREAM_* settings like ``espstream consume``, handles EXPECTED events,
then prints one JSON line. Each is timed from the first event that reached
the receiver (runner) or was decoded (plain, fastavro) to the last one: the
group join before it is not counted.
"""

import io
import json
import logging
import sys
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

from espstream.consumers.runner import TrackingConsumer
from espstream.consumers.settings import ConsumerSettings
from espstream.consumers.signals import Signal
from espstream.plumbing.batches import durable_consumer_config
from espstream.plumbing.offsets import next_offsets
from espstream.schemas.avro import EventDeserializer

BATCH_SIZE = 500


class Arrivals:
    """When the first and the last expected event arrived, and the process CPU between them."""

    def __init__(self, expected: int, deadline_seconds: float):
        self.expected = expected
        self.deadline = time.monotonic() + deadline_seconds
        self.count = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()  # the runner's receivers may run on several lanes

    def arrived(self) -> None:
        with self._lock:
            self.count += 1
            if self.count == 1:
                self.first, self.cpu_first = time.perf_counter(), time.process_time()
            if self.count == self.expected:
                self.last, self.cpu_last = time.perf_counter(), time.process_time()
                self.done.set()

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def result(self, kind: str) -> dict:
        complete = self.done.is_set()
        seconds = self.last - self.first if complete else None
        # n events arrived over n - 1 intervals
        return {
            "kind": kind,
            "events": self.count,
            "complete": complete,
            "seconds": seconds,
            "per_second": (self.count - 1) / seconds if seconds else None,
            "cpu_us_per_event": (self.cpu_last - self.cpu_first) / (self.count - 1) * 1e6 if seconds else None,
        }


def run_runner(group: str, arrivals: Arrivals) -> None:
    """The real TrackingConsumer (what ``espstream consume`` runs) with one no-op receiver."""
    signal = Signal()

    def noop(sender: object, event: object, esp_name: str, **kwargs: object) -> None:
        arrivals.arrived()

    signal.connect(noop)
    runner = TrackingConsumer(group, signal, ConsumerSettings())

    def stop_when_done() -> None:
        arrivals.done.wait(max(arrivals.deadline - time.monotonic(), 0))
        runner.stop()

    threading.Thread(target=stop_when_done, daemon=True).start()
    runner.run()


def run_plain(group: str, arrivals: Arrivals) -> None:
    """confluent-kafka consume + Avro decode to a TrackingEvent (EventDeserializer), a synchronous commit per batch."""
    settings = ConsumerSettings()
    decode = EventDeserializer(SchemaRegistryClient(settings.registry()))
    _consume_loop(group, arrivals, settings, lambda message: decode(message.value(), message.topic()))


def run_fastavro(group: str, arrivals: Arrivals) -> None:
    """The anchor: confluent-kafka consume + the framing read + fastavro's schemaless_reader to a dict.

    The writer schema of each schema id is fetched and parsed once; nothing else is done per record.
    """
    settings = ConsumerSettings()
    registry = SchemaRegistryClient(settings.registry())
    writers: dict[int, object] = {}

    def decode(message: Message) -> dict:
        value = message.value()
        schema_id = int.from_bytes(value[1:5], "big")
        writer = writers.get(schema_id)
        if writer is None:
            writer = writers[schema_id] = parse_schema(json.loads(registry.get_schema(schema_id).schema_str))
        buffer = io.BytesIO(value)
        buffer.seek(5)
        return schemaless_reader(buffer, writer, None)

    _consume_loop(group, arrivals, settings, decode)


def _consume_loop(group: str, arrivals: Arrivals, settings: ConsumerSettings, decode: Callable[[Message], object]) -> None:
    """Consume batches, ``decode`` each record, commit each batch synchronously."""
    consumer = Consumer(
        durable_consumer_config(
            settings.kafka(**{"group.id": group, "session.timeout.ms": settings.kafka_session_timeout_ms})
        )
    )
    consumer.subscribe([settings.normalized_topic])
    try:
        while not arrivals.done.is_set() and not arrivals.expired():
            messages = [m for m in consumer.consume(BATCH_SIZE, timeout=0.5) if m.error() is None]
            for message in messages:
                decode(message)
                arrivals.arrived()
            if messages:
                consumer.commit(offsets=next_offsets(messages), asynchronous=False)
    finally:
        consumer.close()


LOOPS = {"runner": run_runner, "plain": run_plain, "fastavro": run_fastavro}


def main(argv: list[str]) -> int:
    kind, group, expected, deadline = argv[0], argv[1], int(argv[2]), float(argv[3])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arrivals = Arrivals(expected, deadline)
    LOOPS[kind](group, arrivals)
    print(json.dumps(arrivals.result(kind)), flush=True)
    return 0 if arrivals.done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
