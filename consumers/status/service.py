"""`espstream status`: a consumer group on the normalized topic keeping each message's status and each suppression.

At start the state is read from the two compacted topics to their end; then every
batch of events is joined into it (consumers.status.state), the state of every key
the batch touched is produced, and the group's offsets are committed only after the
broker acknowledged those records (espstream.plumbing.batches). A batch read again
(a failed delivery, a crash) produces the same states again: they are joins. When the
group gives this member partitions it did not have, the state topics are read again
first, so a key another member wrote meanwhile is joined, not overwritten.
"""

import logging
import time

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from prometheus_client import Counter, Gauge

from espstream.plumbing.batches import BatchWorker
from espstream.plumbing.lifecycle import run_until_signalled
from espstream.plumbing.metrics import ConsumerLag, serve
from espstream.plumbing.topics import compacted_topic, create_missing
from espstream.schemas.avro import EventDeserializer, registry_unreachable

from .records import status_codec, suppression_codec
from .settings import StatusSettings
from .state import join_status, join_suppression, status_from_event, suppression_from_event
from .table import StateTable

log = logging.getLogger("espstream.status")

EVENTS = Counter(
    "espstream_status_events",
    "Events read by espstream status, by outcome: merged (into a status, a suppression or both), "
    "ignored (no message id and no suppression), undecodable (skipped)",
    ["group", "outcome"],
)
KEYS = Gauge("espstream_status_keys", "Keys held in memory by espstream status, by state topic", ["topic"])
STARTUP_RETRY_SECONDS = 2.0


class StatusService(BatchWorker):
    def __init__(self, settings: StatusSettings | None = None):
        self.settings = settings = settings or StatusSettings()
        kafka_log = logging.getLogger("espstream.kafka")
        self.lag = ConsumerLag(settings.status_group) if settings.status_metrics_port else None
        lag = self.lag.config(settings.kafka_config) if self.lag is not None else {}
        super().__init__(
            settings.kafka(
                **{
                    "group.id": settings.status_group,
                    "session.timeout.ms": settings.kafka_session_timeout_ms,
                    "logger": kafka_log,
                    **lag,
                }
            ),
            settings.producer(logger=kafka_log),
            settings.status_batch_size,
            settings.status_batch_wait_ms / 1000,
        )
        registry = SchemaRegistryClient(settings.registry())
        self.decode_event = EventDeserializer(registry)
        self.statuses = StateTable(settings, status_codec(registry, settings.status_topic), join_status)
        self.suppressions = StateTable(settings, suppression_codec(registry, settings.suppressions_topic), join_suppression)
        self._read_for: frozenset[tuple[str, int]] | None = None  # the assignment the state was last read for
        self._events = {outcome: EVENTS.labels(settings.status_group, outcome) for outcome in ("merged", "ignored", "undecodable")}

    def run(self) -> None:  # type: ignore[override]
        settings = self.settings
        if settings.status_metrics_port:
            self.liveness.lag = self.lag
            serve(settings.metrics_host, settings.status_metrics_port, "ESPSTREAM_STATUS_METRICS_PORT", log,
                  liveness=self.liveness)
        for table in (self.statuses, self.suppressions):
            KEYS.labels(table.topic).set_function(lambda table=table: len(table.states))
        create_missing(settings, [compacted_topic(settings, settings.status_topic), compacted_topic(settings, settings.suppressions_topic)])
        if not self._read_state():
            return
        log.info(
            "status group %s consuming %s: %d statuses, %d addresses read from %s and %s",
            settings.status_group, settings.normalized_topic, len(self.statuses.states), len(self.suppressions.states),
            settings.status_topic, settings.suppressions_topic,
        )
        super().run(settings.normalized_topic)

    def _read_state(self) -> bool:
        """Read both state topics past what was read; False if stopped first. Waits out a registry outage."""
        while not self._stopping:
            try:
                self.statuses.refresh()
                self.suppressions.refresh()
                return True
            except Exception as error:
                if not registry_unreachable(error):
                    raise
                log.warning("schema registry unreachable (%s): reading the state again", error)
                time.sleep(STARTUP_RETRY_SECONDS)
        return False

    def handle(self, records: list[Message]) -> bool:
        assignment = frozenset((tp.topic, tp.partition) for tp in self.consumer.assignment())
        if self._read_for is not None and not assignment <= self._read_for:
            self.statuses.refresh()  # partitions new to us: their keys may have been written by their last owner
            self.suppressions.refresh()
        self._read_for = assignment
        statuses: dict[str, object] = {}
        suppressions: dict[str, object] = {}
        for message in records:
            try:
                event = self.decode_event(message.value(), message.topic())
            except Exception as error:
                if registry_unreachable(error):
                    log.warning("schema registry unreachable (%s): reading the batch again", error)
                    return False
                log.warning("skipping %s[%d]@%d: not a decodable event: %s", message.topic(), message.partition(),
                            message.offset(), error)
                self._events["undecodable"].inc()
                continue
            status, suppression = status_from_event(event), suppression_from_event(event)
            if status is not None:
                statuses[status.key] = self.statuses.apply(status.key, status)
            if suppression is not None:
                suppressions[suppression.address] = self.suppressions.apply(suppression.address, suppression)
            self._events["merged" if status or suppression else "ignored"].inc()
        try:
            # Every key the batch touched, changed or not: a batch read again must write its states again.
            for table, touched in ((self.statuses, statuses), (self.suppressions, suppressions)):
                for key, state in touched.items():
                    self.producer.produce(table.topic, table.codec.encode(state), key=key.encode())
        except Exception as error:
            if registry_unreachable(error):
                log.warning("schema registry unreachable (%s): reading the batch again", error)
                return False
            raise
        return True


def run(settings: StatusSettings | None = None) -> None:
    run_until_signalled(StatusService(settings), log)
