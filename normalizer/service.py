"""The normalizer service: raw topic -> Avro events on the normalized topic, failures to the DLQ.

At least once: a batch of raw records is consumed, every event (or dead letter)
produced for it, the producer flushed, and only when every record was
acknowledged are the raw offsets committed. A failed delivery re-reads the batch.
"""

import logging
import signal
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream import __version__
from espstream.offsets import first_offsets, next_offsets
from schemas import Provenance, TrackingEvent
from schemas import raw
from schemas.avro import EventSerializer

from .core import normalize
from .errors import NormalizeError
from .settings import NormalizerSettings

log = logging.getLogger("espstream.normalizer")

MAX_ERROR_MESSAGE = 2000
RETRY_BACKOFF_SECONDS = 2.0


class EncodeError(Exception):
    """An event could not be encoded for the normalized topic."""


def event_key(event: TrackingEvent) -> bytes | None:
    """All events of one message on one partition, in order."""
    key = event.message_id or event.recipient
    return key.encode() if key else None


class NormalizerService:
    def __init__(self, settings: NormalizerSettings | None = None):
        self.settings = settings = settings or NormalizerSettings()
        self.consumer = Consumer(
            settings.kafka(
                **{
                    "group.id": settings.normalizer_group,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.kafka_session_timeout_ms,
                }
            )
        )
        self._producer_config = settings.kafka(
            **{
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": settings.max_record_bytes,
                "message.timeout.ms": settings.normalizer_delivery_timeout_ms,
            }
        )
        self.producer = Producer(self._producer_config)
        self.serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)
        self._stopping = False
        self._delivery_failed: KafkaError | None = None

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping = True

    def run(self) -> None:
        self._wait_for_registry()
        self.consumer.subscribe([self.settings.raw_topic])
        log.info("normalizer consuming %s as group %s", self.settings.raw_topic, self.settings.normalizer_group)
        try:
            while not self._stopping:
                messages = self.consumer.consume(self.settings.normalizer_batch_size, timeout=0.5)
                if messages:
                    self.process_batch(messages)
        finally:
            self.consumer.close()
            self.producer.flush(10)

    def process_batch(self, messages: list[Message]) -> None:
        records = [m for m in messages if not self._consume_error(m)]
        for message in records:
            self._process(message)
        self.producer.flush()
        if self._delivery_failed is not None:
            self._rewind(records)
            return
        self._commit(records)

    def _process(self, message: Message) -> None:
        try:
            webhook = raw.RawWebhook.from_record(message.value(), message.headers())
            events = normalize(webhook.esp, webhook.body, webhook.content_type, webhook.http_headers)
        except Exception as error:  # any failure is this record's: dead-letter it, move on
            self._dead_letter(message, "normalize", error)
            return
        try:
            encoded = self._encode(message, webhook, events)
        except Exception as error:
            self._dead_letter(message, "encode", error)
            return
        for key, value in encoded:
            self._produce(self.settings.normalized_topic, value, key=key)

    def _encode(self, message: Message, webhook: raw.RawWebhook, events: list[TrackingEvent]) -> list[tuple[bytes | None, bytes]]:
        encoded = []
        for index, event in enumerate(events):
            event.provenance = Provenance(
                esp=webhook.esp,
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                index=index,
                received_at=webhook.received_at,
                request_id=webhook.request_id,
                normalizer_version=__version__,
            )
            value = self.serialize(event)
            if len(value) > self.settings.max_record_bytes:
                raise EncodeError(f"event {index} encodes to {len(value)} bytes, over the {self.settings.max_record_bytes}-byte limit")
            encoded.append((event_key(event), value))
        return encoded

    def _dead_letter(self, message: Message, stage: str, error: BaseException) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d at %s: %s: %s",
            message.topic(), message.partition(), message.offset(), stage, type(error).__name__, error,
            # A NormalizeError is the payload's fault; anything else is a bug worth its traceback.
            exc_info=None if isinstance(error, NormalizeError) else error,
        )
        headers = list(message.headers() or []) + [
            (raw.DLQ_STAGE, stage.encode()),
            (raw.DLQ_ERROR_CLASS, type(error).__name__.encode()),
            (raw.DLQ_ERROR_MESSAGE, str(error)[:MAX_ERROR_MESSAGE].encode("utf-8", "replace")),
            (raw.DLQ_SOURCE_TOPIC, message.topic().encode()),
            (raw.DLQ_SOURCE_PARTITION, str(message.partition()).encode()),
            (raw.DLQ_SOURCE_OFFSET, str(message.offset()).encode()),
            (raw.DLQ_FAILED_AT, datetime.now(UTC).isoformat().encode()),
            (raw.DLQ_NORMALIZER_VERSION, __version__.encode()),
        ]
        self._produce(self.settings.dlq_topic, message.value(), key=message.key(), headers=headers)

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, headers: raw.Headers | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key=key, headers=headers, on_delivery=self._on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.1)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None and self._delivery_failed is None:
            self._delivery_failed = error

    def _commit(self, records: list[Message]) -> None:
        if not records:
            return
        try:
            self.consumer.commit(offsets=next_offsets(records), asynchronous=False)
        except KafkaException as error:
            # The batch is durable downstream; it will be re-read and duplicated, not lost.
            log.warning("offset commit failed: %s", error)

    def _rewind(self, records: list[Message]) -> None:
        log.warning("delivery failed (%s): re-reading the batch in %.0fs", self._delivery_failed, RETRY_BACKOFF_SECONDS)
        self._delivery_failed = None
        # A broker that lost our idempotence state (the embedded one after a restart)
        # refuses this producer's id for good; a new producer gets a new id.
        self.producer.purge()
        self.producer = Producer(self._producer_config)
        for partition in first_offsets(records):
            try:
                self.consumer.seek(partition)
            except KafkaException as error:  # partition revoked meanwhile: its new owner re-reads it
                log.info("not rewinding %s: %s", partition, error)
        time.sleep(RETRY_BACKOFF_SECONDS)

    def _consume_error(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        log.warning("consume error: %s", error)
        return True

    def _wait_for_registry(self) -> None:
        """Register the event schema before consuming, so encoding never waits on the registry."""
        while not self._stopping:
            try:
                self.serialize.register()
                return
            except Exception as error:
                log.warning("schema registry not ready (%s), retrying", error)
                time.sleep(1.0)


def run(settings: NormalizerSettings | None = None) -> None:
    service = NormalizerService(settings)
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.run()
