"""Avro encoding of TrackingEvent in Confluent wire format, through the schema registry."""

import io
import json
import logging
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from .event import EventType, Provenance, RejectReason, TrackingEvent

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("AnymailTrackingEvent.avsc")
_INT64 = range(-(2**63), 2**63)
EVENT_TYPES = frozenset(value for name, value in vars(EventType).items() if name.isupper())
REJECT_REASONS = frozenset(value for name, value in vars(RejectReason).items() if name.isupper())


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
    _check_encodable(event)
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
            return self._framing + avro_body(event)
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
        if framing[:1] == b"\0" and framing + avro_body(event) == value:
            self._framing = framing
        else:  # another framing configured: AvroSerializer keeps encoding every event
            log.warning("AvroSerializer's bytes are not framing + Avro body; not using the fast path")


class EventDeserializer:
    """Confluent-framed Avro bytes -> TrackingEvent, resolving the writer's schema to ours.

    The framing (magic byte 0, the writer schema's id) is read here, and each
    schema id is looked up in the registry and parsed once: then every record is
    one fastavro ``schemaless_reader`` call. A writer schema equal to ours is read
    without a reader schema (fastavro resolves writer to reader per record, field
    by field, when it gets one); an older version is read with ours, by Avro's
    resolution rules. What is not that plain case (another framing, schema
    references or rules, no value) goes through confluent-kafka's AvroDeserializer,
    as every record did before: its errors and its results are the decoder's.
    """

    def __init__(self, registry: SchemaRegistryClient):
        self._registry = registry
        self._deserialize = AvroDeserializer(registry, schema_str(), from_dict=record_to_event)
        # schema id -> (writer, reader or None) for schemaless_reader; None: AvroDeserializer reads it.
        self._schemas: dict[int, tuple[Any, Any] | None] = {}

    def __call__(self, value: bytes, topic: str) -> TrackingEvent:
        if value is not None and len(value) > _FRAMING_BYTES and value[0] == 0:
            schema_id = int.from_bytes(value[1:_FRAMING_BYTES], "big")
            try:
                schemas = self._schemas[schema_id]
            except KeyError:
                schemas = self._schemas[schema_id] = self._resolve(schema_id, topic)
            if schemas is not None:
                buffer = io.BytesIO(value)
                buffer.seek(_FRAMING_BYTES)
                return record_to_event(schemaless_reader(buffer, *schemas))
        return self._deserialize(value, SerializationContext(topic, MessageField.VALUE))

    def _resolve(self, schema_id: int, topic: str) -> tuple[Any, Any] | None:
        """The parsed writer and reader schemas for ``schema_id``; raises what the registry raises (nothing cached)."""
        # The subject AvroDeserializer's default strategy names, as it asks.
        schema = self._registry.get_schema(schema_id, f"{topic}-value")
        if schema.schema_type not in (None, "AVRO") or schema.references or schema.rule_set is not None:
            return None
        writer = parse_schema(json.loads(schema.schema_str))
        reader = parsed_schema()
        return (writer, None) if writer == reader else (writer, reader)


# Magic byte and 4-byte big-endian schema id.
_FRAMING_BYTES = 5


def registry_unreachable(error: Exception) -> bool:
    """A decoding error that is a schema-registry outage (read again later), not a record that never decodes."""
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code >= 500 or error.http_status_code < 0
    return isinstance(error, _OUTAGE_ERRORS)


try:  # the HTTP client confluent-kafka's registry client uses: httpx2 where installed, else httpx
    from confluent_kafka.schema_registry.common._httpx_compat import httpx as _registry_httpx
except ImportError:
    _registry_httpx = httpx
_OUTAGE_ERRORS = (httpx.TransportError, _registry_httpx.TransportError, ConnectionError, TimeoutError)


def avro_body(event: TrackingEvent) -> bytes:
    """The Avro binary encoding of ``event``, unframed: the bytes of ``event_to_record(event)``.

    The record is built for fastavro's writer in the form it encodes fastest: every union
    value names its branch (fastavro's tuple notation, so no branch is tried and validated
    in turn) and timestamps are already microseconds. tests/unit/normalizer/parity check these bytes against
    ``schemaless_writer(event_to_record(event))`` for every fixture.
    """
    buffer = io.BytesIO()
    schemaless_writer(buffer, parsed_schema(), _writer_record(event))
    return buffer.getvalue()


def _check_encodable(event: TrackingEvent) -> None:
    """Raise a ValueError naming the field for what the schema cannot hold (fastavro's own errors name none)."""
    if event.provenance is None:
        raise ValueError("an event needs its provenance before it is encoded")
    if event.event_type not in EVENT_TYPES:
        raise ValueError(f"event_type {event.event_type!r} is none of the schema's: {', '.join(sorted(EVENT_TYPES))}")
    if event.reject_reason is not None and event.reject_reason not in REJECT_REASONS:
        raise ValueError(
            f"reject_reason {event.reject_reason!r} is none of the schema's: {', '.join(sorted(REJECT_REASONS))}"
        )


def decode_body(body: bytes) -> TrackingEvent:
    """The event whose unframed Avro body (``avro_body``) is ``body``, written with this schema."""
    return record_to_event(schemaless_reader(io.BytesIO(body), parsed_schema(), None))


def _writer_record(event: TrackingEvent) -> dict[str, Any]:
    _check_encodable(event)
    provenance = event.provenance
    reject_reason = event.reject_reason
    return {
        "dedupe_id": event.dedupe_id,
        "esp_name": event.esp_name,
        "event_type": event.event_type,
        "timestamp": _timestamp_branch(event.timestamp),
        "event_id": _string_branch(event.event_id),
        "message_id": _string_branch(event.message_id),
        "recipient": _string_branch(event.recipient),
        "metadata": {key: _metadata_branch(value) for key, value in event.metadata.items()},
        "tags": event.tags,
        "reject_reason": None if reject_reason is None else (_REJECT_REASON, reject_reason),
        "description": _string_branch(event.description),
        "mta_response": _string_branch(event.mta_response),
        "user_agent": _string_branch(event.user_agent),
        "click_url": _string_branch(event.click_url),
        "esp_event": json.dumps(event.esp_event),
        "provenance": {
            "esp": provenance.esp,
            "topic": provenance.topic,
            "partition": provenance.partition,
            "offset": provenance.offset,
            "index": provenance.index,
            "received_at": _timestamp_branch(provenance.received_at),
            "request_id": _string_branch(provenance.request_id),
            "normalizer_version": provenance.normalizer_version,
        },
    }


_REJECT_REASON = "espstream.RejectReason"
_JSON_TEXT = "espstream.JsonText"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _string_branch(value: str | None) -> tuple[str, str] | None:
    # Not a str (a bug upstream): no branch named, so fastavro's own check refuses it.
    return ("string", value) if value.__class__ is str else value  # type: ignore[return-value]


def _timestamp_branch(value: datetime | None) -> Any:
    if value is None:
        return None
    if value.tzinfo is None:  # fastavro reads a naive datetime as local time: leave it to fastavro
        return ("long", value)
    delta = value - _EPOCH
    return ("long", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _metadata_branch(value: Any) -> Any:
    """``_metadata_value_to_avro(value)`` with its union branch named."""
    kind = value.__class__
    if kind is str:
        return ("string", value) if value.isascii() or _utf8_encodable(value) else (_JSON_TEXT, {"json": json.dumps(value)})
    if value is None:
        return None
    if kind is bool:
        return ("boolean", value)
    if kind is float:
        return ("double", value)
    if kind is int and value in _INT64:
        return ("long", value)
    avro = _metadata_value_to_avro(value)  # subclasses of str, int, float: as the plain mapping says
    return avro if not isinstance(avro, dict) else (_JSON_TEXT, avro)


@cache
def parsed_schema() -> Any:
    return parse_schema(json.loads(schema_str()))


@cache
def state_schema_str(name: str) -> str:
    """The text of ``schemas/<name>.avsc`` for the state records of `espstream status`: MessageStatus, Suppression."""
    return Path(__file__).with_name(f"{name}.avsc").read_text()
