"""Running espstream's services as real processes, and reading topics back, for tests."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from espstream.embedded import wait_for_port

T = TypeVar("T")


class Service:
    """``python -m espstream ARGS`` with ESPSTREAM_* settings, its output in a log file."""

    def __init__(self, args: list[str], settings: dict[str, str], log_path: Path):
        self.args = args
        self.env = {**os.environ, **settings}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> "Service":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "espstream", *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        if port is not None:
            wait_for_port("127.0.0.1", port, timeout=30)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def own_topics(bootstrap_servers: str, registry_url: str | None = None, partitions: int = 3) -> dict[str, str]:
    """ESPSTREAM_* settings naming topics and a normalizer group no other test uses (tests share one broker)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return {
        "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        **({"ESPSTREAM_SCHEMA_REGISTRY_URL": registry_url} if registry_url is not None else {}),
        "ESPSTREAM_RAW_TOPIC": f"{prefix}.raw",
        "ESPSTREAM_NORMALIZED_TOPIC": f"{prefix}.normalized",
        "ESPSTREAM_DLQ_TOPIC": f"{prefix}.dlq",
        "ESPSTREAM_STATUS_TOPIC": f"{prefix}.status",
        "ESPSTREAM_SUPPRESSIONS_TOPIC": f"{prefix}.suppressions",
        "ESPSTREAM_TOPIC_PARTITIONS": str(partitions),
        "ESPSTREAM_NORMALIZER_GROUP": f"{prefix}-normalizer",
    }


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.2) -> T:
    """The first truthy result of ``check()``, or an AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result {result!r})")
        time.sleep(interval)


def read_topic(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> list[Message]:
    """Every record on ``topic`` now, all partitions, without joining a group.

    Reads to the end of each partition rather than to its high watermark: the
    embedded broker reports a watermark short of a multi-record batch's end.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "espstream-tests",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
        if pending:
            raise AssertionError(f"{topic}: partitions {sorted(pending)} not read to their end in {timeout}s")
        return records
    finally:
        consumer.close()


def count_records(bootstrap_servers: str, topic: str) -> int:
    """How many records ``topic`` holds."""
    return len(read_topic(bootstrap_servers, topic))
