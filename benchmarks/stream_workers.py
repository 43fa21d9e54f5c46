"""The two timed consume -> produce loops, each in a process of its own.

``python -m benchmarks.stream_workers normalizer|passthrough|normalizer-stages EXPECTED DEADLINE_SECONDS``
reads its settings from ESPSTREAM_* variables like ``espstream normalize``,
processes EXPECTED raw records, then prints one JSON line: the seconds from the
first batch consumed to the commit of the last one.
"""

import json
import logging
import sys
import threading
import time

from confluent_kafka import Consumer, Message, Producer

from espstream.normalizer.service import NormalizerService
from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.offsets import next_offsets


class Stopwatch:
    """When the first batch arrived, when the last expected record was committed."""

    def __init__(self, expected: int, deadline_seconds: float):
        self.expected = expected
        self.deadline = time.monotonic() + deadline_seconds
        self.records = 0
        self.batches = 0
        self.started: float | None = None
        self.finished: float | None = None
        # CPU seconds of this process (every thread, librdkafka's too) over the same span.
        self.cpu_started = 0.0
        self.cpu_finished = 0.0

    def batch_consumed(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()
            self.cpu_started = time.process_time()

    def batch_committed(self, size: int) -> bool:
        """Whether the loop is done (every expected record committed, or out of time)."""
        self.records += size
        self.batches += 1
        if self.records >= self.expected:
            self.finished = time.perf_counter()
            self.cpu_finished = time.process_time()
            return True
        return self.expired()

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def result(self, kind: str) -> dict:
        seconds = (self.finished - self.started) if self.finished and self.started else None
        return {
            "kind": kind,
            "records": self.records,
            "batches": self.batches,
            "complete": self.finished is not None,
            "seconds": seconds,
            "per_second": self.records / seconds if seconds else None,
            "cpu_us_per_record": (self.cpu_finished - self.cpu_started) / self.records * 1e6 if seconds else None,
        }


class TimedNormalizer(NormalizerService):
    """The real service, its loop untouched; only the batch boundaries are timed."""

    def __init__(self, stopwatch: Stopwatch, settings: NormalizerSettings | None = None):
        super().__init__(settings)
        self.stopwatch = stopwatch

    def process_batch(self, messages: list[Message]) -> None:
        self.stopwatch.batch_consumed()
        super().process_batch(messages)  # produces, flushes, commits synchronously
        if self.stopwatch.batch_committed(len(messages)):
            self.stop()


def run_normalizer(stopwatch: Stopwatch) -> None:
    run_until_deadline(TimedNormalizer(stopwatch), stopwatch)


def run_until_deadline(service: NormalizerService, stopwatch: Stopwatch) -> None:
    # The deadline also covers a group join or a registry that never comes.
    timer = threading.Timer(max(stopwatch.deadline - time.monotonic(), 0), service.stop)
    timer.daemon = True
    timer.start()
    try:
        service.run()
    finally:
        timer.cancel()


class MemberNormalizer(TimedNormalizer):
    """One member of several: the records it gets are not known, so it stops once the topic is drained."""

    IDLE_SECONDS = 3.0

    def process_batch(self, messages: list[Message]) -> None:
        self.stopwatch.batch_consumed()
        NormalizerService.process_batch(self, messages)
        self.stopwatch.batch_committed(len(messages))
        self.stopwatch.finished = time.perf_counter()
        self.stopwatch.cpu_finished = time.process_time()


def run_member(stopwatch: Stopwatch) -> dict:
    service = MemberNormalizer(stopwatch)

    def stop_when_idle() -> None:
        while not stopwatch.expired():
            time.sleep(0.2)
            if stopwatch.finished is not None and time.perf_counter() - stopwatch.finished > MemberNormalizer.IDLE_SECONDS:
                break
        service.stop()

    threading.Thread(target=stop_when_idle, daemon=True).start()
    service.run()
    # perf_counter is CLOCK_MONOTONIC here: one clock for every process on the machine.
    return {
        "started_at": stopwatch.started,
        "finished_at": stopwatch.finished,
        "cpu_seconds": stopwatch.cpu_finished - stopwatch.cpu_started,
    }


def run_passthrough(stopwatch: Stopwatch) -> None:
    """The anchor: the normalizer's loop with nothing between consume and produce.

    Same consumer and producer settings as NormalizerService, same batch size,
    same produce / flush / synchronous commit per batch.
    """
    settings = NormalizerSettings()
    consumer = Consumer(
        settings.kafka(
            **{
                "group.id": settings.normalizer_group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.kafka_session_timeout_ms,
            }
        )
    )
    producer = Producer(
        settings.kafka(
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": settings.max_record_bytes,
                "message.timeout.ms": settings.normalizer_delivery_timeout_ms,
            }
        )
    )
    consumer.subscribe([settings.raw_topic])
    try:
        while not stopwatch.expired():
            messages = consumer.consume(settings.normalizer_batch_size, timeout=0.5)
            if not messages:
                continue
            stopwatch.batch_consumed()
            records = [m for m in messages if m.error() is None]
            for message in records:
                while True:
                    try:
                        producer.produce(settings.normalized_topic, message.value(), key=message.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
            producer.flush()
            consumer.commit(offsets=next_offsets(records), asynchronous=False)
            if stopwatch.batch_committed(len(records)):
                break
    finally:
        consumer.close()
        producer.flush(10)


def run_normalizer_stages(stopwatch: Stopwatch) -> dict:
    """The normalizer with a clock on every stage: slower than ``run_normalizer``, for the breakdown only."""
    from . import profiling

    clock = profiling.StageClock()
    profiling.instrument_modules(clock)

    class StagedNormalizer(TimedNormalizer):
        def process_batch(self, messages: list[Message]) -> None:
            clock.armed = True
            super().process_batch(messages)

    service = StagedNormalizer(stopwatch)
    profiling.instrument_service(service, clock)
    run_until_deadline(service, stopwatch)
    if not stopwatch.finished:
        return {}
    return {"stages": profiling.breakdown(clock, stopwatch.records, stopwatch.finished - stopwatch.started)}


LOOPS = {
    "normalizer": run_normalizer,
    "normalizer-member": run_member,
    "passthrough": run_passthrough,
    "normalizer-stages": run_normalizer_stages,
}


def main(argv: list[str]) -> int:
    kind, expected, deadline = argv[0], int(argv[1]), float(argv[2])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopwatch = Stopwatch(expected, deadline)
    extra = LOOPS[kind](stopwatch) or {}
    print(json.dumps({**stopwatch.result(kind), **extra}), flush=True)
    return 0 if stopwatch.finished is not None or kind == "normalizer-member" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
