"""An asyncio front for confluent-kafka's Producer: ``await send(...)`` returns once the broker acked.

A thread serves librdkafka's delivery callbacks and hands each poll's worth of
results to the event loop in one call, so the loop is never blocked by Kafka
and is woken once per batch rather than once per record.
"""

import asyncio
import logging
import threading
import time
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class BrokerUnavailable(Exception):
    """The record is not known to be durable: answer 503 so the sender retries."""


class AckingProducer:
    def __init__(self, config: dict[str, Any], ack_timeout: float):
        self._config = {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": config.get("linger.ms", 2),
            # librdkafka gives up a little after the request did, so nothing lingers unbounded.
            "message.timeout.ms": int(ack_timeout * 1000) + 1000,
            "error_cb": self._on_error,
        }
        self._ack_timeout = ack_timeout
        self._producer = Producer(self._config)
        # Set by a fatal error, or by a timed-out delivery: a broker that lost our
        # idempotence state (the embedded broker after a restart) refuses this
        # producer's id for good, and only a new producer gets a new one.
        self._replace = threading.Event()
        self._replaced_at = 0.0
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivered: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._thread = threading.Thread(target=self._serve_callbacks, name="kafka-acks", daemon=True)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for outstanding records, then stop the callback thread."""
        self._stopping.set()
        self._thread.join()
        self._producer.flush(timeout)

    async def send(self, topic: str, value: bytes, headers: Headers) -> None:
        assert self._loop is not None, "start() first"
        future: asyncio.Future[None] = self._loop.create_future()
        try:
            self._producer.produce(topic, value, headers=headers, on_delivery=partial(self._on_delivery, future))
        except BufferError:
            raise BrokerUnavailable("the producer's queue is full") from None
        except KafkaException as error:
            raise BrokerUnavailable(str(error)) from None
        try:
            await asyncio.wait_for(future, self._ack_timeout)
        except TimeoutError:
            raise BrokerUnavailable(f"no acknowledgement within {self._ack_timeout}s") from None

    def topic_available(self, topic: str, timeout: float) -> bool:
        """Whether the broker answers and knows ``topic`` with a leader for every partition. Blocking."""
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout)
        except KafkaException:
            return False
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return False
        return all(p.error is None and p.leader >= 0 for p in found.partitions.values())

    # Callback thread

    def _serve_callbacks(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)
            if self._delivered:
                batch, self._delivered = self._delivered, []
                self._loop.call_soon_threadsafe(_resolve, batch)  # type: ignore[union-attr]
            if self._replace.is_set() and time.monotonic() - self._replaced_at > self._ack_timeout:
                self._replace_producer()

    def _on_delivery(self, future: asyncio.Future[None], error: KafkaError | None, _msg: object) -> None:
        self._delivered.append((future, error))
        if error is not None and error.code() == KafkaError._MSG_TIMED_OUT:
            self._replace.set()

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("Kafka producer fatal error, replacing the producer: %s", error)
            self._replace.set()
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("Kafka producer: %s", error)
        else:  # connection retries: librdkafka logs them itself
            log.debug("Kafka producer: %s", error)

    def _replace_producer(self) -> None:
        # Fail what the old producer holds, so those requests answer 503 and are retried.
        log.info("replacing the Kafka producer")
        old = self._producer
        self._producer = Producer(self._config)
        self._replace.clear()
        self._replaced_at = time.monotonic()
        old.purge()
        old.poll(0)


def _resolve(batch: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, error in batch:
        if future.done():  # the request already timed out
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(BrokerUnavailable(str(error)))
