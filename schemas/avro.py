"""Avro encoding of TrackingEvent in Confluent wire format, through the schema registry."""

import io
import json
import logging
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_writer

from .event import EventType, Provenance, TrackingEvent

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("AnymailTrackingEvent.avsc")
_INT64 = range(-(2**63), 2**63)
EVENT_TYPES = frozenset(value for name, value in vars(EventType).items() if name.isupper())


@cache
def schema_str() -> str:
    return SCHEMA_PATH.read_text()


def _metadata_value_to_avro(value: Any) -> Any:
    if isinstance(value, str):
        # Avro strings are UTF-8; a lone surrogate (legal in JSON) survives only as a JSON escape.
        return value if _utf8_encodable(value) else {"json": json.dumps(value)}
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int) and value in _INT64:
        return value
    return {"json": json.dumps(value)}


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _metadata_value_from_avro(value: Any) -> Any:
    if isinstance(value, dict):
        return json.loads(value["json"])
    return value


def event_to_record(event: TrackingEvent, ctx: SerializationContext | None = None) -> dict[str, Any]:
    """The Avro record (as a dict) for ``event``."""
    if event.provenance is None:
        raise ValueError("an event needs its provenance before it is encoded")
    if event.event_type not in EVENT_TYPES:
        raise ValueError(f"event_type {event.event_type!r} is none of the schema's: {', '.join(sorted(EVENT_TYPES))}")
    return {
        "dedupe_id": event.dedupe_id,
        "esp_name": event.esp_name,
        "event_type": event.event_type,
        "timestamp": event.timestamp,
        "event_id": event.event_id,
        "message_id": event.message_id,
        "recipient": event.recipient,
        "metadata": {key: _metadata_value_to_avro(value) for key, value in event.metadata.items()},
        "tags": event.tags,
        "reject_reason": event.reject_reason,
        "description": event.description,
        "mta_response": event.mta_response,
        "user_agent": event.user_agent,
        "click_url": event.click_url,
        # ASCII escapes keep lone surrogates (legal in JSON) encodable as UTF-8.
        "esp_event": json.dumps(event.esp_event),
        # Not dataclasses.asdict: its deep copy of received_at was a quarter of the encoding time.
        "provenance": {name: getattr(event.provenance, name) for name in _PROVENANCE_FIELDS},
    }


_PROVENANCE_FIELDS = tuple(field.name for field in fields(Provenance))


def record_to_event(record: dict[str, Any], ctx: SerializationContext | None = None) -> TrackingEvent:
    """The TrackingEvent for an Avro record decoded as a dict."""
    return TrackingEvent(
        dedupe_id=record["dedupe_id"],
        esp_name=record["esp_name"],
        event_type=record["event_type"],
        timestamp=record["timestamp"],
        event_id=record["event_id"],
        message_id=record["message_id"],
        recipient=record["recipient"],
        metadata={key: _metadata_value_from_avro(value) for key, value in record["metadata"].items()},
        tags=record["tags"],
        reject_reason=record["reject_reason"],
        description=record["description"],
        mta_response=record["mta_response"],
        user_agent=record["user_agent"],
        click_url=record["click_url"],
        esp_event=json.loads(record["esp_event"]),
        provenance=Provenance(**record["provenance"]),
    )


_SAMPLE_EVENT = TrackingEvent(
    event_type="unknown",
    provenance=Provenance(
        esp="", topic="", partition=0, offset=0, index=0, received_at=None, request_id=None, normalizer_version=""
    ),
)


class EventSerializer:
    """TrackingEvent -> Confluent-framed Avro bytes; registers the schema as ``<topic>-value``.

    The first event goes through confluent-kafka's AvroSerializer, which registers
    the schema and frames the bytes (magic byte, schema id). If its bytes equal
    that framing plus fastavro's encoding of the same record, later events are
    framed here: the same bytes, without AvroSerializer's per-call subject lookup
    and rule machinery, which cost about as much as the encoding itself.
    """

    def __init__(self, registry: SchemaRegistryClient, topic: str):
        self._ctx = SerializationContext(topic, MessageField.VALUE)
        self._serialize = AvroSerializer(registry, schema_str(), to_dict=event_to_record)
        self._framing: bytes | None = None
        self._compared = False

    def __call__(self, event: TrackingEvent) -> bytes:
        if self._framing is not None:
            return self._framing + _avro_body(event_to_record(event))
        value = self._serialize(event, self._ctx)
        if not self._compared:
            self._compared = True
            self._adopt_framing(event, value)
        return value

    def register(self) -> None:
        """Register the schema now, so that no later event waits on the registry."""
        self(_SAMPLE_EVENT)

    def _adopt_framing(self, event: TrackingEvent, value: bytes) -> None:
        framing = value[:5]
        if framing[:1] == b"\0" and framing + _avro_body(event_to_record(event)) == value:
            self._framing = framing
        else:  # another framing configured: AvroSerializer keeps encoding every event
            log.warning("AvroSerializer's bytes are not framing + Avro body; not using the fast path")


class EventDeserializer:
    """Confluent-framed Avro bytes -> TrackingEvent, resolving the writer's schema to ours."""

    def __init__(self, registry: SchemaRegistryClient):
        self._deserialize = AvroDeserializer(registry, schema_str(), from_dict=record_to_event)

    def __call__(self, value: bytes, topic: str) -> TrackingEvent:
        return self._deserialize(value, SerializationContext(topic, MessageField.VALUE))


def registry_unreachable(error: Exception) -> bool:
    """A decoding error that is a schema-registry outage (read again later), not a record that never decodes."""
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code >= 500 or error.http_status_code < 0
    return isinstance(error, (httpx.TransportError, ConnectionError, TimeoutError))


def _avro_body(record: dict[str, Any]) -> bytes:
    """The Avro binary encoding of ``record`` (an ``event_to_record`` dict), unframed."""
    buffer = io.BytesIO()
    schemaless_writer(buffer, _parsed_schema(), record)
    return buffer.getvalue()


@cache
def _parsed_schema() -> Any:
    return parse_schema(json.loads(schema_str()))
