"""The Kafka topic the registry keeps its records in: create it, read it whole, append with acks.

Blocking calls: the registry runs them in worker threads, never on the event loop.
"""

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from espstream.plumbing.producer import durable_producer_config
from espstream.plumbing.reader import TopicReader

log = logging.getLogger("espstream.registry")

Record = tuple[bytes | None, bytes | None]


class StoreError(Exception):
    """A record was not acknowledged: it may or may not be in the topic."""


class StoreTimeout(StoreError):
    pass


class SchemaLog:
    def __init__(self, kafka_config: dict[str, Any], topic: str, ack_timeout: float = 10.0, idempotent: bool = True):
        self.topic = topic
        self._config = dict(kafka_config)
        self._idempotent = idempotent
        self._ack_timeout = ack_timeout
        self._producer: Producer | None = None

    def ensure_topic(self, timeout: float) -> None:
        """Create the topic (one partition, compacted) unless it exists; refuse one with more partitions.

        One partition keeps every record in one order, which ids and versions depend on.
        """
        admin = AdminClient(self._config)
        topic = NewTopic(self.topic, num_partitions=1, replication_factor=-1, config={"cleanup.policy": "compact"})
        future = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)[self.topic]
        try:
            future.result()
            log.info("created schema topic %s", self.topic)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        partitions = self._partition_count(admin, timeout)
        if partitions != 1:
            raise RuntimeError(f"schema topic {self.topic} has {partitions} partitions; it needs exactly 1")

    def read_all(self, timeout: float) -> Iterator[Record]:
        """Every record from the beginning to the end of the topic as it is now, in order.

        ``assign()``, not a consumer group: nothing to join, no offsets to commit.
        """
        config = {**self._config, "group.id": f"espstream-registry-{self.topic}"}  # librdkafka insists on one; never joined
        with TopicReader(config, self.topic, timeout) as reader:
            for message in reader.read(reader.bounds([0])):
                yield message.key(), message.value()

    def connect_producer(self, timeout: float) -> None:
        """Create the producer now: its first request (idempotence setup) then costs startup, not a write."""
        self._producer_once().list_topics(self.topic, timeout=timeout)

    def append(self, key: bytes, value: bytes) -> None:
        """Write one record and return once the broker acknowledged it (acks=all); else raise ``StoreError``."""
        producer = self._producer_once()
        delivered = threading.Event()
        failure: list[KafkaError] = []

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failure.append(error)
            delivered.set()

        try:
            producer.produce(self.topic, value, key=key, on_delivery=on_delivery)
        except (BufferError, KafkaException) as error:
            self._discard_producer()
            raise StoreError(str(error)) from None
        producer.flush(self._ack_timeout + 1.0)
        if not delivered.is_set():
            self._discard_producer()
            raise StoreTimeout(f"no acknowledgement from Kafka within {self._ack_timeout}s")
        if failure:
            self._discard_producer()
            raise StoreError(str(failure[0]))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._ack_timeout)
            self._producer = None

    def _producer_once(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                durable_producer_config(
                    {
                        **self._config,
                        "enable.idempotence": self._idempotent,
                        "linger.ms": 0,  # one record at a time, each awaited: nothing to batch
                        "message.timeout.ms": int(self._ack_timeout * 1000),
                    }
                )
            )
        return self._producer

    def _discard_producer(self) -> None:
        # After a failure (possibly fatal for an idempotent producer) start afresh with a new one.
        if self._producer is not None:
            self._producer.purge()
            self._producer.flush(0)
            self._producer = None

    def _partition_count(self, admin: AdminClient, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            metadata = admin.list_topics(self.topic, timeout=timeout).topics.get(self.topic)
            if metadata is not None and metadata.error is None and metadata.partitions:
                if all(p.error is None and p.leader >= 0 for p in metadata.partitions.values()):
                    return len(metadata.partitions)
            if time.monotonic() > deadline:
                raise TimeoutError(f"schema topic {self.topic} not visible after {timeout}s")
            time.sleep(0.1)  # a new topic takes a moment to show in the metadata with a leader
