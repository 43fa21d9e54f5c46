"""The runner: one consumer-group member on the normalized topic calling the signal's receivers.

Offsets are committed after every receiver returned for the batch's events, or the
event was dead-lettered to ``<normalized topic>.dlq.<group>`` after its last attempt.
"""

import logging
import signal as signals
import time
from typing import Any

import httpx
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from espstream.batches import BatchWorker
from espstream.topics import create_missing, retained_topic
from schemas import TrackingEvent, raw
from schemas.avro import EventDeserializer

from .settings import ConsumerSettings
from .signals import Connection, Signal, tracking

log = logging.getLogger("espstream.consumers")

class TrackingConsumer(BatchWorker):
    """The ``sender`` receivers are called with, as anymail passes its webhook view class."""

    def __init__(self, group: str, signal: Signal = tracking, settings: ConsumerSettings | None = None):
        self.group = group
        self.signal = signal
        self.settings = settings = settings or ConsumerSettings()
        self.dlq_topic = settings.group_dlq_topic(group)
        super().__init__(
            settings.kafka(
                **{
                    "group.id": group,
                    "session.timeout.ms": settings.kafka_session_timeout_ms,
                    # A batch of events that all exhaust their retries must not get this member evicted.
                    "max.poll.interval.ms": _max_poll_interval_ms(settings),
                }
            ),
            settings.kafka(**{"message.max.bytes": settings.max_dead_letter_bytes}),
            settings.consumer_batch_size,
        )
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))

    def run(self) -> None:  # type: ignore[override]
        create_missing(self.settings, [retained_topic(self.settings, self.dlq_topic)])
        log.info(
            "group %s consuming %s with %d receiver(s)",
            self.group, self.settings.normalized_topic, len(self.signal.connections),
        )
        super().run(self.settings.normalized_topic)

    def handle(self, records: list[Message]) -> bool:
        for message in records:
            try:
                event = self.decode(message.value(), message.topic())
            except Exception as error:
                if _transient(error):
                    log.warning("schema registry unreachable (%s): reading the batch again", error)
                    return False
                self._dead_letter(message, "(decode)", error, attempts=1)
                continue
            if event is None:  # a null value: nothing to decode, nothing to call
                self._dead_letter(message, "(decode)", ValueError("record has no value"), attempts=1)
                continue
            self._dispatch(message, event)
        return True

    def _dispatch(self, message: Message, event: TrackingEvent) -> None:
        """Call each wanted receiver; retry only the failing ones; dead-letter what keeps failing."""
        kwargs: dict[str, Any] = {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "dedupe_id": event.dedupe_id,
        }
        pending = [c for c in self.signal.connections if c.wants(event)]
        backoff = self.settings.consumer_retry_backoff_seconds
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            failures = self._call(pending, event, kwargs)
            if not failures:
                return
            if attempt == self.settings.consumer_max_attempts:
                for connection, error in failures:
                    self._dead_letter(message, connection.name, error, attempts=attempt)
                return
            pending = [connection for connection, _ in failures]
            time.sleep(backoff)
            backoff = min(backoff * 2, self.settings.consumer_retry_backoff_max_seconds)

    def _call(
        self, connections: list[Connection], event: TrackingEvent, kwargs: dict[str, Any]
    ) -> list[tuple[Connection, Exception]]:
        failures = []
        for connection in connections:
            try:
                connection.receiver(sender=TrackingConsumer, event=event, esp_name=event.esp_name, **kwargs)
            except Exception as error:
                log.exception("receiver %s failed on %s", connection.name, event.dedupe_id)
                failures.append((connection, error))
        return failures

    def _dead_letter(self, message: Message, receiver: str, error: Exception, attempts: int) -> None:
        headers = raw.dead_letter_headers(
            message,
            error,
            [
                (raw.DLQ_GROUP, self.group.encode()),
                (raw.DLQ_RECEIVER, receiver.encode()),
                (raw.DLQ_ATTEMPTS, str(attempts).encode()),
            ],
        )
        self.produce(self.dlq_topic, message.value(), key=message.key(), headers=headers)

def _max_poll_interval_ms(settings: ConsumerSettings) -> int:
    """Long enough for a whole batch whose every event waits out every retry."""
    backoff, total = settings.consumer_retry_backoff_seconds, 0.0
    for _ in range(settings.consumer_max_attempts - 1):
        total += backoff
        backoff = min(backoff * 2, settings.consumer_retry_backoff_max_seconds)
    worst_seconds = settings.consumer_batch_size * (total + 1.0) + 60
    return min(max(300_000, int(worst_seconds * 1000)), 86_400_000)


def _transient(error: Exception) -> bool:
    """A registry outage, as opposed to a record that can never be decoded."""
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code >= 500 or error.http_status_code < 0
    return isinstance(error, (httpx.TransportError, ConnectionError, TimeoutError))


def run(group: str, signal: Signal = tracking, settings: ConsumerSettings | None = None) -> None:
    runner = TrackingConsumer(group, signal, settings)
    signals.signal(signals.SIGTERM, runner.stop)
    signals.signal(signals.SIGINT, runner.stop)
    runner.run()
