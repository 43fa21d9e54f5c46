"""Settings every service shares: where Kafka and the schema registry are, topic names.

Every setting is an environment variable with the ``ESPSTREAM_`` prefix
(``kafka_bootstrap_servers`` is ``ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS``).
"""

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Django's DATA_UPLOAD_MAX_MEMORY_SIZE: what an anymail webhook view accepts by default.
DEFAULT_MAX_BODY_BYTES = 2_621_440
# Room for the raw record's headers on top of the body.
RECORD_OVERHEAD_BYTES = 256 * 1024
# Room for a dead letter's own headers on top of the record it carries.
DEAD_LETTER_HEADROOM_BYTES = 64 * 1024


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESPSTREAM_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Extra librdkafka properties as JSON, e.g. {"security.protocol": "SASL_SSL", ...}.
    kafka_config: dict[str, Any] = {}
    # Idempotent producers (no duplicate on a retry). Off for a broker that stores a producer's
    # sequence number before its records, such as the durable embedded broker (Tansu 0.6.0): a
    # crash between the two writes makes the producer's retry a "duplicate" it acknowledges
    # without storing it. Without idempotence a retry may store a record twice, never lose it.
    kafka_idempotence: bool = True
    schema_registry_url: str = "http://127.0.0.1:8081"
    # Extra SchemaRegistryClient properties as JSON, e.g. {"basic.auth.user.info": "u:p"}.
    schema_registry_config: dict[str, Any] = {}

    raw_topic: str = "tracking.raw"
    normalized_topic: str = "tracking.normalized"
    dlq_topic: str = "tracking.dlq"
    # `espstream status`'s compacted state: each message's status, each suppressed address.
    status_topic: str = "tracking.status"
    suppressions_topic: str = "tracking.suppressions"
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    # Retention (Kafka's retention.ms, and retention.bytes per partition); -1 keeps records
    # until deleted. The raw topic is the system of record that replays read again, and dead
    # letters (the normalizer's and every receiver group's) wait for a fix: both are kept
    # forever unless lowered here, e.g. where personal data may not be kept longer.
    raw_retention_ms: int = Field(-1, ge=-1)
    raw_retention_bytes: int = Field(-1, ge=-1)
    dlq_retention_ms: int = Field(-1, ge=-1)
    dlq_retention_bytes: int = Field(-1, ge=-1)
    # The normalized topic is derived data: a replay of the raw topic writes its events again,
    # with the same dedupe ids. Kept forever it would double the storage of the raw topic and
    # hold every superseded event beside its replayed one, so by default (None) its retention
    # is the broker's own (log.retention.*, 7 days on Apache Kafka), neither set nor checked by
    # `topics ensure`. Set these when a receiver group may be down longer than that.
    normalized_retention_ms: int | None = Field(None, ge=-1)
    normalized_retention_bytes: int | None = Field(None, ge=-1)

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def kafka(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka configuration: bootstrap servers, the user's extras, then ``overrides``."""
        return {"bootstrap.servers": self.kafka_bootstrap_servers, **self.kafka_config, **overrides}

    def producer(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka configuration of a producer: ``kafka(**overrides)`` and whether it is idempotent."""
        return self.kafka(**{"enable.idempotence": self.kafka_idempotence, **overrides})

    def registry(self) -> dict[str, Any]:
        return {"url": self.schema_registry_url, **self.schema_registry_config}

    @property
    def max_record_bytes(self) -> int:
        return self.max_body_bytes + RECORD_OVERHEAD_BYTES

    @property
    def max_dead_letter_bytes(self) -> int:
        return self.max_record_bytes + DEAD_LETTER_HEADROOM_BYTES


class RegistrySettings(CommonSettings):
    """The development schema registry (`espstream registry`)."""

    registry_host: str = "127.0.0.1"
    registry_port: int = 8081
    # Where registered schemas are kept, so ids survive a registry restart.
    registry_topic: str = "_schemas"
