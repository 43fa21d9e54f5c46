"""The normalizer service: raw topic -> Avro events on the normalized topic, failures to the DLQ.

At least once (espstream.plumbing.batches): every event or dead letter produced for a
batch of raw records is acknowledged before the batch's offsets are committed.
Metrics (normalizer.metrics) are served on ESPSTREAM_NORMALIZER_METRICS_PORT, with the
probes /healthz and /readyz.
"""

import logging
import time

from confluent_kafka import KafkaError, Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.batches import BatchWorker
from espstream.plumbing.lifecycle import run_until_signalled
from espstream.plumbing.metrics import ConsumerLag, serve
from espstream.schemas import raw
from espstream.schemas.avro import EventSerializer

from .errors import NormalizeError
from .metrics import BatchTally, NormalizerMetrics, esp_label
from .records import RecordNormalizer, write_outcome
from .settings import NormalizerSettings

log = logging.getLogger("espstream.normalizer")


class NormalizerService(BatchWorker):
    def __init__(self, settings: NormalizerSettings | None = None):
        self.settings = settings = settings or NormalizerSettings()
        kafka_log = logging.getLogger("espstream.kafka")
        # The group's lag comes from librdkafka's statistics, only when someone can read it.
        lag: dict[str, object] = {}
        self.lag = ConsumerLag(settings.normalizer_group) if settings.normalizer_metrics_port else None
        if self.lag is not None:
            lag = self.lag.config(settings.kafka_config)
        super().__init__(
            settings.kafka(
                **{
                    "group.id": settings.normalizer_group,
                    "session.timeout.ms": settings.kafka_session_timeout_ms,
                    "logger": kafka_log,
                    **lag,
                }
            ),
            settings.producer(
                **{
                    "message.max.bytes": settings.max_dead_letter_bytes,
                    "message.timeout.ms": settings.normalizer_delivery_timeout_ms,
                    "logger": kafka_log,
                }
            ),
            settings.normalizer_batch_size,
            settings.normalizer_batch_wait_ms / 1000,
        )
        self.serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)
        self.normalize_record = RecordNormalizer(self.serialize, settings.max_record_bytes, settings.normalize_options)
        self.metrics = NormalizerMetrics()
        self._tally = BatchTally()
        self._rewound = False

    def run(self) -> None:  # type: ignore[override]
        settings = self.settings
        if settings.normalizer_metrics_port:
            self.liveness.lag = self.lag
            serve(settings.metrics_host, settings.normalizer_metrics_port, "ESPSTREAM_NORMALIZER_METRICS_PORT", log,
                  liveness=self.liveness)
        self._wait_for_registry()
        log.info("normalizer consuming %s as group %s", self.settings.raw_topic, self.settings.normalizer_group)
        super().run(self.settings.raw_topic)

    def process_batch(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        self._tally, self._rewound = BatchTally(), False
        super().process_batch(messages)
        if not self._rewound:  # else it is counted when read again
            self.metrics.batch_done(self._tally, messages, started)

    def _rewind(self, records: list[Message], failed: KafkaError | None) -> None:
        self._rewound = True
        self.metrics.batch_retried()
        super()._rewind(records, failed)

    def handle(self, records: list[Message]) -> bool:
        produce, normalize_record = self.producer.produce, self.normalize_record
        events_topic, dlq_topic = self.settings.normalized_topic, self.settings.dlq_topic
        for message in records:
            normalized = normalize_record(message)
            failure = write_outcome(produce, message, normalized, events_topic, dlq_topic)
            if failure is None:
                self._tally.normalized(esp_label(normalized.webhook.esp), normalized.events)  # type: ignore[union-attr]
            else:
                self._dead_lettered(message, *failure)
        return True

    def _dead_lettered(self, message: Message, stage: str, error: BaseException) -> None:
        headers = dict(message.headers() or [])  # a raw record's headers, as the gateway wrote them
        esp = esp_label(_text(headers.get(raw.ESP)))
        log.warning(
            "dead-lettering %s[%d]@%d at %s: %s: %s",
            message.topic(), message.partition(), message.offset(), stage, type(error).__name__, error,
            # A NormalizeError is the payload's fault; anything else is a bug worth its traceback.
            exc_info=None if isinstance(error, NormalizeError) else error,
            extra={
                "request_id": _text(headers.get(raw.REQUEST_ID)),
                "esp": esp,
                "stage": stage,
                "error_class": type(error).__name__,
                "partition": message.partition(),
                "offset": message.offset(),
            },
        )
        self._tally.dead_lettered(esp, stage, error)

    def _wait_for_registry(self) -> None:
        """Register the event schema before consuming, so encoding never waits on the registry."""
        while not self._stopping:
            try:
                self.serialize.register()
                return
            except Exception as error:
                log.warning("schema registry not ready (%s), retrying", error)
                time.sleep(1.0)


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


def run(settings: NormalizerSettings | None = None) -> None:
    run_until_signalled(NormalizerService(settings), log)
