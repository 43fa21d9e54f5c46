"""The normalizer service: raw topic -> Avro events on the normalized topic, failures to the DLQ.

At least once (espstream.batches): every event or dead letter produced for a
batch of raw records is acknowledged before the batch's offsets are committed.
"""

import logging
import signal
import time

from confluent_kafka import KafkaException, Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.batches import BatchWorker
from schemas.avro import EventSerializer

from .errors import NormalizeError
from .records import RecordNormalizer, dead_letter_headers
from .settings import NormalizerSettings

log = logging.getLogger("espstream.normalizer")


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
        self.normalize_record = RecordNormalizer(self.serialize, settings.max_record_bytes)

    def run(self) -> None:  # type: ignore[override]
        self._wait_for_registry()
        log.info("normalizer consuming %s as group %s", self.settings.raw_topic, self.settings.normalizer_group)
        super().run(self.settings.raw_topic)

    def handle(self, records: list[Message]) -> bool:
        for message in records:
            self._process(message)
        return True

    def _process(self, message: Message) -> None:
        normalized = self.normalize_record(message)
        if normalized.failed:
            self._dead_letter(message, normalized.stage, normalized.error)
            return
        try:
            for key, value in normalized.records:
                self.produce(self.settings.normalized_topic, value, key=key)
        except KafkaException as error:  # refused before sending (e.g. over the producer's size limit)
            self._dead_letter(message, "produce", error)

    def _dead_letter(self, message: Message, stage: str, error: BaseException) -> None:
        log.warning(
            "dead-lettering %s[%d]@%d at %s: %s: %s",
            message.topic(), message.partition(), message.offset(), stage, type(error).__name__, error,
            # A NormalizeError is the payload's fault; anything else is a bug worth its traceback.
            exc_info=None if isinstance(error, NormalizeError) else error,
        )
        self.produce(self.settings.dlq_topic, message.value(), key=message.key(), headers=dead_letter_headers(message, stage, error))

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
