"""The end-to-end anchor: two bare librdkafka hops through a fresh embedded broker at a fixed rate.

A source produces timestamped 600-byte records to topic ``a`` at ``rate``/s (acks=all, as the
gateway); a relay consumes ``a`` and produces each record to ``b`` the way the normalizer
does (a batch when full or after the normalizer's batch wait, flush, synchronous commit), and a
sink consumes ``b`` the way the consumer runner does (``consume(n, 0)``, else ``poll``). Every
consumer fetches with espstream's ``fetch.wait.max.ms``. What the records' latency is after the
warm-up is what the broker and librdkafka take for the stack's two consuming hops, with no HTTP,
parsing, Avro or receivers: the floor of the end-to-end latency on this broker and machine.
"""

import statistics
import struct
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.plumbing.batches import FETCH_WAIT_MS
from espstream.normalizer.settings import NormalizerSettings

from .stack import fresh_broker

PARTITIONS = 6
VALUE = b"x" * 600
CLOCK = struct.Struct("d")


def measure_hops(rate: float, seconds: float, warmup_seconds: float, log_dir: Path, name: str) -> dict:
    batch_wait = NormalizerSettings().normalizer_batch_wait_ms / 1000
    with fresh_broker(log_dir, name) as (broker, _env):
        servers = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": servers})
        for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in ("hop.a", "hop.b")]).values():
            future.result()
        stop = threading.Event()
        latencies: list[tuple[float, float]] = []  # (sent at, ms)

        def consumer(group: str, topic: str) -> Consumer:
            client = Consumer({"bootstrap.servers": servers, "group.id": group, "enable.auto.commit": False,
                               "fetch.wait.max.ms": FETCH_WAIT_MS})  # fmt: skip
            client.assign([TopicPartition(topic, partition, 0) for partition in range(PARTITIONS)])
            return client

        def relay() -> None:
            source, sink = consumer("hop-relay", "hop.a"), Producer({"bootstrap.servers": servers, "acks": "all", "linger.ms": 5})
            while not stop.is_set():
                messages = source.consume(500, batch_wait)
                if not messages:
                    continue
                for message in messages:
                    if message.error() is None:
                        sink.produce("hop.b", message.value())
                sink.flush(30)
                source.commit(asynchronous=False)
            source.close()

        def sink() -> None:
            reader = consumer("hop-sink", "hop.b")
            while not stop.is_set():
                messages = reader.consume(500, 0)
                if not messages:
                    message = reader.poll(0.1)
                    messages = [message] if message is not None else []
                now = time.time()
                for message in messages:
                    if message.error() is None:
                        sent_at = CLOCK.unpack_from(message.value())[0]
                        latencies.append((sent_at, (now - sent_at) * 1000))
            reader.close()

        threads = [threading.Thread(target=relay), threading.Thread(target=sink)]
        for thread in threads:
            thread.start()
        producer = Producer({"bootstrap.servers": servers, "acks": "all", "linger.ms": 2})
        started = time.perf_counter()
        first_sent = time.time()
        sent = 0
        while (elapsed := time.perf_counter() - started) < warmup_seconds + seconds:
            due = sent / rate
            if due > elapsed:
                time.sleep(due - elapsed)
            producer.produce("hop.a", CLOCK.pack(time.time()) + VALUE)
            producer.poll(0)
            sent += 1
        producer.flush(30)
        deadline = time.monotonic() + 30
        while len(latencies) < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(30)
    measured = sorted(ms for at, ms in latencies if at - first_sent >= warmup_seconds)
    cuts = statistics.quantiles(measured, n=100) if len(measured) > 1 else [float("nan")] * 99
    return {"rate": rate, "sent": sent, "arrived": len(latencies), "measured": len(measured),
            "p50_ms": cuts[49], "p99_ms": cuts[98], "max_ms": measured[-1] if measured else None}  # fmt: skip


__all__ = ["measure_hops"]
