"""An asyncio front for confluent-kafka's Producer: ``await send(...)`` returns once the broker acked.

librdkafka's delivery callbacks are served on the event loop itself, by a task
that polls without blocking (``poll(0)``): every millisecond while some request
awaits an acknowledgement, every 50 ms otherwise (error callbacks, producer
replacement). A callback thread has to take the GIL from the busy loop once
per record, which cost the gateway a large share of its throughput under load
(BENCHMARKS.md); polling with a zero timeout still never blocks the loop.
"""

import asyncio
import logging
import threading
import time
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from espstream.plumbing.producer import durable_producer_config

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]

# How often the loop polls librdkafka while acknowledgements are awaited, and otherwise.
BUSY_POLL_SECONDS = 0.001
IDLE_POLL_SECONDS = 0.05


class BrokerUnavailable(Exception):
    """The record is not known to be durable: answer 503 so the sender retries."""


class AckingProducer:
    def __init__(self, config: dict[str, Any], ack_timeout: float):
        self._config = {
            **durable_producer_config({"linger.ms": 2, **config}),
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None
        self._delivered: list[tuple[asyncio.Future[None], KafkaError | None]] = []
        self._awaiting = 0  # requests waiting for their acknowledgement
        self._idle: asyncio.Future[None] | None = None  # set to wake the poller from its idle wait

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._poller = self._loop.create_task(self._serve_callbacks(), name="kafka-acks")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop serving callbacks, then wait (off the loop) for outstanding records."""
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                pass
            self._poller = None
        await asyncio.to_thread(self._producer.flush, timeout)

    async def send(self, topic: str, value: bytes, headers: Headers) -> None:
        assert self._loop is not None, "start() first"
        future: asyncio.Future[None] = self._loop.create_future()
        try:
            self._producer.produce(topic, value, headers=headers, on_delivery=partial(self._on_delivery, future))
        except BufferError:
            raise BrokerUnavailable("the producer's queue is full") from None
        except KafkaException as error:
            raise BrokerUnavailable(str(error)) from None
        self._awaiting += 1
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        try:
            await asyncio.wait_for(future, self._ack_timeout)
        except TimeoutError:
            raise BrokerUnavailable(f"no acknowledgement within {self._ack_timeout}s") from None
        finally:
            self._awaiting -= 1

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

    # Callbacks, served on the event loop

    async def _serve_callbacks(self) -> None:
        assert self._loop is not None
        while True:
            try:
                self._serve_ready_callbacks()
            except Exception:  # the loop must go on, or every later request times out
                log.exception("serving Kafka callbacks failed")
            if self._awaiting:
                await asyncio.sleep(BUSY_POLL_SECONDS)
                continue
            self._idle = self._loop.create_future()
            try:
                await asyncio.wait_for(self._idle, IDLE_POLL_SECONDS)
            except TimeoutError:
                pass
            finally:
                self._idle = None

    def _serve_ready_callbacks(self) -> None:
        self._producer.poll(0)  # never blocks; runs _on_delivery and _on_error for what is ready
        if self._delivered:
            batch, self._delivered = self._delivered, []
            _resolve(batch)
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
        # Destroying a client waits for its threads to end: not on the event loop.
        discarded = [old]
        del old
        threading.Thread(target=discarded.pop, name="kafka-discard", daemon=True).start()


def _resolve(batch: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for future, error in batch:
        if future.done():  # the request already timed out
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(BrokerUnavailable(str(error)))
