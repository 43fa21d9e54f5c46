"""Counting a topic's records by reading them.

Tansu 0.6's high watermark lags behind batched writes (it reads as the first
offset of a partition's last batch), so sums of watermarks undercount:
read everything instead.
"""

import time

from confluent_kafka import Consumer, TopicPartition


def read_count(bootstrap_servers: str, topic: str, expected: int, idle_seconds: float = 3.0, timeout: float = 120.0) -> int:
    """How many records ``topic`` holds: read from the start until ``expected`` were seen, or none came for ``idle_seconds``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "espstream-bench-count",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52_428_800,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        seen = 0
        deadline = time.monotonic() + timeout
        last_record = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_record < idle_seconds:
            batch = consumer.consume(10_000, timeout=0.2)
            good = sum(1 for m in batch if m.error() is None)
            if good:
                seen += good
                last_record = time.monotonic()
                if seen >= expected:
                    # Anything past ``expected`` would be a duplicate: look a moment longer.
                    idle_seconds = min(idle_seconds, 1.0)
        return seen
    finally:
        consumer.close()
