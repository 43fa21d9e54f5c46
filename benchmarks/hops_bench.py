"""The end-to-end anchor: two bare librdkafka hops through a fresh embedded broker at a fixed rate.

A source produces timestamped 600-byte records to topic ``a`` at ``rate``/s (acks=all, as the
gateway); a relay consumes ``a`` and produces each record to ``b`` the way the normalizer
does (``read_batch`` with the normalizer's batch wait, flush, synchronous commit), and a
sink consumes ``b`` the way the consumer runner does (``read_batch``). Every
consumer fetches with espstream's ``fetch.wait.max.ms``. What the records' latency is after the
warm-up is what the broker and librdkafka take for the stack's two consuming hops, with no HTTP,
parsing, Avro or receivers: the floor of the end-to-end latency on this broker and machine.
"""

import statistics
import struct
import threading
import time
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.plumbing.batches import FETCH_WAIT_MS, read_batch
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
                messages = read_batch(source, 500, batch_wait)
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
                messages = read_batch(reader, 500, idle_seconds=0.1)
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
        broker_process = psutil.Process(broker.processes[0].pid)
        broker_cpu: list[float] = []  # the broker's CPU seconds when the warm-up ended and when the load did
        while (elapsed := time.perf_counter() - started) < warmup_seconds + seconds:
            if not broker_cpu and elapsed >= warmup_seconds:
                broker_cpu.append(_cpu_seconds(broker_process))
            due = sent / rate
            if due > elapsed:
                time.sleep(due - elapsed)
            producer.produce("hop.a", CLOCK.pack(time.time()) + VALUE)
            producer.poll(0)
            sent += 1
        broker_cpu.append(_cpu_seconds(broker_process))
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
            "p50_ms": cuts[49], "p99_ms": cuts[98], "max_ms": measured[-1] if measured else None,
            "broker_cpu_us_per_record": (broker_cpu[1] - broker_cpu[0]) / (rate * seconds) * 1e6}  # fmt: skip


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


__all__ = ["measure_hops"]
