"""The two timed consume loops over pre-loaded normalized events, each in a process of its own.

``python -m benchmarks.consumer_workers runner|plain GROUP EXPECTED DEADLINE_SECONDS``
reads ESPSTREAM_* settings like ``espstream consume``, handles EXPECTED events,
then prints one JSON line. Both are timed from the first event that reached
the receiver (runner) or was decoded (plain) to the last one: the group join
before it is not counted.
"""

import json
import logging
import sys
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient

from consumers.runner import TrackingConsumer
from consumers.settings import ConsumerSettings
from consumers.signals import Signal
from espstream.batches import durable_consumer_config
from espstream.offsets import next_offsets
from schemas.avro import EventDeserializer

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
    """The anchor: confluent-kafka consume + Avro decode (EventDeserializer), a synchronous commit per batch."""
    settings = ConsumerSettings()
    consumer = Consumer(
        durable_consumer_config(
            settings.kafka(**{"group.id": group, "session.timeout.ms": settings.kafka_session_timeout_ms})
        )
    )
    decode = EventDeserializer(SchemaRegistryClient(settings.registry()))
    consumer.subscribe([settings.normalized_topic])
    try:
        while not arrivals.done.is_set() and not arrivals.expired():
            messages = [m for m in consumer.consume(BATCH_SIZE, timeout=0.5) if m.error() is None]
            for message in messages:
                decode(message.value(), message.topic())
                arrivals.arrived()
            if messages:
                consumer.commit(offsets=next_offsets(messages), asynchronous=False)
    finally:
        consumer.close()


LOOPS = {"runner": run_runner, "plain": run_plain}


def main(argv: list[str]) -> int:
    kind, group, expected, deadline = argv[0], argv[1], int(argv[2]), float(argv[3])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arrivals = Arrivals(expected, deadline)
    LOOPS[kind](group, arrivals)
    print(json.dumps(arrivals.result(kind)), flush=True)
    return 0 if arrivals.done.is_set() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
