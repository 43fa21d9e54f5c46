"""The state records on the status and suppressions topics: Avro in Confluent wire format, schemas in schemas/.

Written and read through confluent-kafka's AvroSerializer and AvroDeserializer, so the
schemas are registered as ``<topic>-value`` and any Confluent-compatible client reads them.
"""

from collections.abc import Callable
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from espstream.schemas.avro import state_schema_str

from .state import Evidence, MessageStatus, Suppression, message_status, suppression

STATUS_SCHEMA = "MessageStatus"
SUPPRESSION_SCHEMA = "Suppression"


def status_to_record(status: MessageStatus, ctx: SerializationContext | None = None) -> dict[str, Any]:
    return {
        "esp": status.esp,
        "message_id": status.message_id,
        "recipient": status.recipient,
        "recipients": list(status.recipients),
        "status": status.status,
        "times": status.times,
        "last_times": status.last_times,
        "last_event_at": status.last_event_at,
        "events": status.events,
        "dedupe_ids": sorted(status.dedupe_ids),
    }


def record_to_status(record: dict[str, Any], ctx: SerializationContext | None = None) -> MessageStatus:
    """Derived fields are computed again from the merge fields: a record from an older precedence reads as today's."""
    return message_status(
        record["esp"],
        record["message_id"],
        record["times"],
        record["last_times"] or record["times"],
        tuple(record["recipients"]),
        frozenset(record["dedupe_ids"]),
    )


def suppression_to_record(state: Suppression, ctx: SerializationContext | None = None) -> dict[str, Any]:
    return {
        "address": state.address,
        "reason": state.reason,
        "at": state.at,
        "esp": state.esp,
        "message_id": state.message_id,
        "evidence": [
            {"reason": e.reason, "at": e.at, "esp": e.esp, "message_id": e.message_id, "dedupe_id": e.dedupe_id}
            for e in state.evidence
        ],
        "subscribed_at": state.subscribed_at,
    }


def record_to_suppression(record: dict[str, Any], ctx: SerializationContext | None = None) -> Suppression:
    evidence = {
        e["reason"]: Evidence(e["at"], e["dedupe_id"], e["reason"], e["esp"], e["message_id"]) for e in record["evidence"]
    }
    return suppression(record["address"], evidence, record["subscribed_at"])


class StateCodec:
    """Encoder and decoder of one state topic's values."""

    def __init__(
        self,
        registry: SchemaRegistryClient,
        topic: str,
        schema: str,
        to_dict: Callable[[Any, SerializationContext | None], dict[str, Any]],
        from_dict: Callable[[dict[str, Any], SerializationContext | None], Any],
    ):
        self.topic = topic
        self._ctx = SerializationContext(topic, MessageField.VALUE)
        self._serialize = AvroSerializer(registry, state_schema_str(schema), to_dict=to_dict)
        self._deserialize = AvroDeserializer(registry, state_schema_str(schema), from_dict=from_dict)

    def encode(self, state: Any) -> bytes:
        return self._serialize(state, self._ctx)

    def decode(self, value: bytes | None) -> Any:
        """The state in ``value``; None for a tombstone."""
        return None if value is None else self._deserialize(value, self._ctx)


def status_codec(registry: SchemaRegistryClient, topic: str) -> StateCodec:
    return StateCodec(registry, topic, STATUS_SCHEMA, status_to_record, record_to_status)


def suppression_codec(registry: SchemaRegistryClient, topic: str) -> StateCodec:
    return StateCodec(registry, topic, SUPPRESSION_SCHEMA, suppression_to_record, record_to_suppression)
