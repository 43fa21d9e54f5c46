"""Dead-letter topics: writing a letter and waiting for its acknowledgement, reading the pending ones back.

A dead-letter topic is read by a redrive group (``<owner group>.redrive``) that
commits each letter once it was dealt with, so the next redrive or listing starts
after it. Reading uses assign(), not a group subscription: one reader, no join wait.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from .batches import durable_producer_config

log = logging.getLogger("espstream.deadletters")

RETRY_SECONDS = 1.0
DLQ_PREFIX = "dlq-"


def redrive_group(group: str) -> str:
    """The consumer group whose offsets on ``group``'s dead-letter topic mark what was redriven."""
    return f"{group}.redrive"


def header_text(message: Message, name: str) -> str | None:
    """The last header ``name`` of ``message`` as text (a redriven letter's newest value wins)."""
    found = None
    for key, value in message.headers() or ():
        if key == name and value is not None:
            found = value.decode("utf-8", "replace")
    return found


class DeadLetterWriter:
    """Writes dead letters and returns once the broker acknowledged them; safe to share between threads."""

    def __init__(self, producer_config: dict[str, Any]):
        self._config = durable_producer_config(producer_config)
        self._producer = Producer(self._config)
        self._lock = threading.Lock()

    def write(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
        give_up: Callable[[], bool] = lambda: False,
    ) -> Message | None:
        """Produce until acknowledged; the delivered record, or None if ``give_up()`` turned true first."""
        while True:
            outcome: list[tuple[KafkaError | None, Message]] = []
            producer = self._producer
            try:
                producer.produce(topic, value, key=key, headers=headers, on_delivery=lambda e, m: outcome.append((e, m)))
            except BufferError:
                producer.poll(0.1)
                continue
            while not outcome:
                producer.flush(1.0)
            error, delivered = outcome[0]
            if error is None:
                return delivered
            log.warning("dead letter to %s not acknowledged (%s): writing it again", topic, error)
            self._renew(producer)
            if give_up():
                return None
            time.sleep(RETRY_SECONDS)

    def close(self) -> None:
        self._producer.flush(10)

    def _renew(self, failed: Producer) -> None:
        # A broker that lost our idempotence state (the embedded one after a restart)
        # refuses this producer's id for good; a new producer gets a new id.
        with self._lock:
            if self._producer is failed:
                failed.purge()
                self._producer = Producer(self._config)


class DeadLetterReader:
    """The letters of ``topic`` after ``group``'s committed offsets (all of them with ``from_beginning``)."""

    def __init__(self, consumer_config: dict[str, Any], topic: str, group: str, from_beginning: bool = False):
        self.topic = topic
        self.consumer = Consumer(
            {
                **consumer_config,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        self._from_beginning = from_beginning
        self._ended: set[int] = set()

    def __enter__(self) -> "DeadLetterReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.consumer.close()

    def letters(self, timeout: float = 30.0) -> Iterator[Message]:
        """Each pending letter in partition order, until every partition was read to its end."""
        metadata = self.consumer.list_topics(self.topic, timeout=timeout).topics[self.topic]
        if metadata.error is not None:
            if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return  # nothing was ever dead-lettered
            raise KafkaException(metadata.error)
        partitions = [TopicPartition(self.topic, p) for p in sorted(metadata.partitions)]
        if self._from_beginning:
            starts = [TopicPartition(self.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        else:
            starts = [
                TopicPartition(self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                for tp in self.consumer.committed(partitions, timeout=timeout)
            ]
        self.consumer.assign(starts)
        pending = {tp.partition for tp in partitions}
        # Reading to each partition's end, not to its high watermark: the embedded
        # broker reports a watermark short of a multi-record batch's end.
        while pending - self._ended:
            message = self.consumer.poll(1.0)
            if message is None or message.partition() in self._ended:
                continue
            error = message.error()
            if error is None:
                yield message
            elif error.code() == KafkaError._PARTITION_EOF:
                self._ended.add(message.partition())
            else:
                raise KafkaException(error)

    def end_partition(self, partition: int) -> None:
        """Read no further in ``partition`` (e.g. it reached letters written during this run)."""
        self._ended.add(partition)

    def commit(self, letter: Message) -> None:
        """Mark ``letter`` and every letter before it in its partition as dealt with."""
        self.consumer.commit(
            offsets=[TopicPartition(letter.topic(), letter.partition(), letter.offset() + 1)], asynchronous=False
        )


def summary(letter: Message) -> dict[str, Any]:
    """A dead letter's position and its ``dlq-*`` headers, for listing."""
    key = letter.key()
    return {
        "partition": letter.partition(),
        "offset": letter.offset(),
        "key": key.decode("utf-8", "replace") if key is not None else None,
        **{
            name.removeprefix(DLQ_PREFIX): header_text(letter, name)
            for name, _ in letter.headers() or ()
            if name.startswith(DLQ_PREFIX)
        },
    }
