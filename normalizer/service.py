"""The normalizer service: raw topic -> Avro events on the normalized topic, failures to the DLQ.

At least once (espstream.batches): every event or dead letter produced for a
batch of raw records is acknowledged before the batch's offsets are committed.
"""

import logging
import signal
import time

from confluent_kafka import KafkaException, Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream import __version__
from espstream.batches import BatchWorker
from schemas import Provenance, TrackingEvent
from schemas import raw
from schemas.avro import EventSerializer

from .core import normalize
from .errors import NormalizeError
from .settings import NormalizerSettings

log = logging.getLogger("espstream.normalizer")

# What librdkafka counts beside key and value against message.max.bytes, generously.
RECORD_FRAMING_BYTES = 1024


class EncodeError(Exception):
    """An event could not be encoded for the normalized topic."""


def event_key(event: TrackingEvent) -> bytes | None:
    """All events of one message on one partition, in order."""
    key = event.message_id or event.recipient
    return key.encode() if key else None


class NormalizerService(BatchWorker):
    def __init__(self, settings: NormalizerSettings | None = None):
        self.settings = settings = settings or NormalizerSettings()
        super().__init__(
            settings.kafka(
                **{"group.id": settings.normalizer_group, "session.timeout.ms": settings.kafka_session_timeout_ms}
            ),
            settings.kafka(
                **{
                    "message.max.bytes": settings.max_dead_letter_bytes,
                    "message.timeout.ms": settings.normalizer_delivery_timeout_ms,
                }
            ),
            settings.normalizer_batch_size,
        )
        self.serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)

    def run(self) -> None:  # type: ignore[override]
        self._wait_for_registry()
        log.info("normalizer consuming %s as group %s", self.settings.raw_topic, self.settings.normalizer_group)
        super().run(self.settings.raw_topic)

    def handle(self, records: list[Message]) -> bool:
        for message in records:
            self._process(message)
        return True

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
        try:
            for key, value in encoded:
                self.produce(self.settings.normalized_topic, value, key=key)
        except KafkaException as error:  # refused before sending (e.g. over the producer's size limit)
            self._dead_letter(message, "produce", error)

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
            key = event_key(event)
            size = len(value) + len(key or b"") + RECORD_FRAMING_BYTES
            if size > self.settings.max_record_bytes:
                raise EncodeError(f"event {index} encodes to {size} bytes, over the {self.settings.max_record_bytes}-byte limit")
            encoded.append((key, value))
        return encoded

    def _dead_letter(self, message: Message, stage: str, error: BaseException) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d at %s: %s: %s",
            message.topic(), message.partition(), message.offset(), stage, type(error).__name__, error,
            # A NormalizeError is the payload's fault; anything else is a bug worth its traceback.
            exc_info=None if isinstance(error, NormalizeError) else error,
        )
        headers = raw.dead_letter_headers(
            message, error, [(raw.DLQ_STAGE, stage.encode()), (raw.DLQ_NORMALIZER_VERSION, __version__.encode())]
        )
        self.produce(self.settings.dlq_topic, message.value(), key=message.key(), headers=headers)

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
