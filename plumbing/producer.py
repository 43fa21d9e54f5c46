"""The one durable producer: acks=all, idempotent unless told not to, replaced after a failed delivery.

Two ways to use it. A batch loop (the normalizer, a replay) produces a batch
without waiting, then ``flush()`` says whether every record was acknowledged; if
not it reads the batch again. A writer of single records (dead letters, a
redrive's events) calls ``write()``, which returns once its record is
acknowledged, producing it again until it is; it is safe to share between threads.

After a failed delivery the producer is purged and replaced: a broker that lost
our idempotence state (the embedded one after a restart) refuses the producer's id
for good (UNKNOWN_PRODUCER_ID); a new producer gets a new id.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger("espstream.producer")

RETRY_SECONDS = 1.0
Headers = list[tuple[str, bytes]]


def durable_producer_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` for a producer whose records every in-sync replica acknowledged; idempotent unless ``config`` says not."""
    return {"linger.ms": 5, "enable.idempotence": True, **config, "acks": "all"}


class DurableProducer:
    def __init__(self, config: dict[str, Any], each_acknowledged: bool = False):
        """``each_acknowledged`` for ``write()``: every delivery calls back, not only failures.

        Otherwise only failures call back: flush() waits for every record either way,
        and a success needs no Python call per record.
        """
        self._config = {**durable_producer_config(config), "delivery.report.only.error": not each_acknowledged}
        self._producer = Producer(self._config)
        self._lock = threading.Lock()
        self._failed: KafkaError | None = None

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> Producer:
        """Queue a record; the client it went to. KafkaException if it refuses it (e.g. over its size limit)."""
        producer = self._producer
        while True:
            try:
                producer.produce(topic, value, key=key, headers=headers, on_delivery=on_delivery or self._on_delivery)
                return producer
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)

    def flush(self, timeout: float | None = None) -> KafkaError | None:
        """Wait for every queued record; the first failure since the last flush (the producer then replaced), else None."""
        producer = self._producer
        if timeout is None:
            producer.flush()
        else:
            producer.flush(timeout)
        failed, self._failed = self._failed, None
        if failed is not None:
            self._replace(producer)
        return failed

    def write(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers | None = None,
        give_up: Callable[[], bool] = lambda: False,
    ) -> Message | None:
        """Produce until acknowledged; the delivered record, or None if ``give_up()`` turned true first."""
        while True:
            outcome: list[tuple[KafkaError | None, Message]] = []
            producer = self.produce(topic, value, key, headers, lambda e, m: outcome.append((e, m)))
            while not outcome:
                producer.flush(1.0)
            error, delivered = outcome[0]
            if error is None:
                return delivered
            log.warning("record to %s not acknowledged (%s): writing it again", topic, error)
            self._replace(producer)
            if give_up():
                return None
            time.sleep(RETRY_SECONDS)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and self._failed is None:
            self._failed = error

    def _replace(self, failed: Producer) -> None:
        with self._lock:  # one replacement, however many threads saw the failure
            if self._producer is failed:
                failed.purge()
                self._producer = Producer(self._config)
