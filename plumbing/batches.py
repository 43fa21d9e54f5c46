"""The at-least-once loop of the normalizer, and the client settings every espstream worker shares.

Consume a batch, let the subclass handle it (producing what it produces), wait
until the broker acknowledged every produced record, then commit the batch's
offsets. If anything was not acknowledged, or the subclass asks for it, seek
back and read the batch again: work can repeat after a failure, never be skipped.

The consumer runner (consumers.runner) commits per event rather than per batch,
on the same consumer and producer settings.
"""

import logging
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from .metrics import Liveness
from .offsets import first_offsets, next_offsets
from .producer import DurableProducer

log = logging.getLogger("espstream.batches")

RETRY_BACKOFF_SECONDS = 2.0
# How long a fetch may wait at the broker for new records (librdkafka's default is 500 ms).
# Kafka answers as soon as a record arrives anyway, so this only sets how often an idle
# consumer asks again; the embedded broker answers late, by up to this long, and two
# consuming hops (normalizer, consumers) pay it twice end to end. ESPSTREAM_KAFKA_CONFIG
# can set another ("fetch.wait.max.ms").
FETCH_WAIT_MS = 25
# How long an idle worker's poll blocks before it looks again (and at whether it should stop).
IDLE_POLL_SECONDS = 0.2


def read_batch(consumer: Consumer, room: int, wait_seconds: float = 0.0, idle_seconds: float = IDLE_POLL_SECONDS) -> list[Message]:
    """The next batch, up to ``room`` records.

    With ``wait_seconds`` 0: what the client has already fetched, else the next
    record within ``idle_seconds`` and what came with it. ``consume(n, 0)``
    returns at once, so a batch costs one call and no record waits for others:
    under light load a batch is what one fetch brought, under heavy load it
    fills while the previous one is handled. With ``wait_seconds``: a batch
    filled for up to that long (fewer, larger batches; each record waits).
    """
    if wait_seconds > 0:
        return consumer.consume(room, timeout=wait_seconds)
    messages = consumer.consume(room, 0)
    if messages:
        return messages
    message = consumer.poll(idle_seconds)
    if message is None:
        return []
    return [message, *consumer.consume(room - 1, 0)] if room > 1 else [message]


def durable_consumer_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with commits left to the worker and a group without offsets starting at the beginning."""
    # Commits are the worker's business alone; durability settings are not negotiable.
    # A group without offsets starts at the beginning: the records behind a gateway 200 are never skipped.
    return {"fetch.wait.max.ms": FETCH_WAIT_MS, **config, "enable.auto.commit": False, "auto.offset.reset": "earliest"}


class BatchWorker:
    def __init__(
        self, consumer_config: dict[str, Any], producer_config: dict[str, Any], batch_size: int, batch_wait_seconds: float = 0.0
    ):
        self.consumer = Consumer(durable_consumer_config(consumer_config))
        self.producer = DurableProducer(producer_config)
        self.batch_size = batch_size
        # 0: a batch is what has been fetched; else it fills for up to this long (read_batch).
        self.batch_wait_seconds = batch_wait_seconds
        self.liveness = Liveness()  # what /readyz reads: a clock read per batch, none per record
        self._stopping = False

    def handle(self, records: list[Message]) -> bool:
        """Process a batch; False to read it again later (e.g. a dependency is down)."""
        raise NotImplementedError

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping = True

    def run(self, topic: str) -> None:
        liveness = self.liveness
        self.consumer.subscribe(
            [topic],
            on_assign=lambda _consumer, partitions: liveness.assign(partitions),
            on_revoke=lambda _consumer, partitions: liveness.revoke(partitions),
            on_lost=lambda _consumer, partitions: liveness.revoke(partitions),
        )
        try:
            while not self._stopping:
                messages = read_batch(self.consumer, self.batch_size, self.batch_wait_seconds)
                liveness.polled()
                if messages:
                    self.process_batch(messages)
        finally:
            self.consumer.close()
            self.producer.close()

    def process_batch(self, messages: list[Message]) -> None:
        records = [m for m in messages if not self._consume_error(m)]
        if not records:
            return
        handled = self.handle(records)
        failed = self.producer.flush()
        if not handled or failed is not None:
            self._rewind(records, failed)
            return
        try:
            self.consumer.commit(offsets=next_offsets(records), asynchronous=False)
        except KafkaException as error:
            # Everything is durable downstream; the batch will be read again, not lost.
            log.warning("offset commit failed: %s", error)

    def _rewind(self, records: list[Message], failed: KafkaError | None) -> None:
        if failed is not None:
            log.warning("delivery failed (%s): reading the batch again", failed)
        for partition in first_offsets(records):
            try:
                self.consumer.seek(partition)
            except KafkaException as error:  # revoked meanwhile: its new owner reads it again
                log.info("not rewinding %s: %s", partition, error)
        time.sleep(RETRY_BACKOFF_SECONDS)

    def _consume_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        log.warning("consume error: %s", error)
        return True
