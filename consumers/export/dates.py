"""The event date of a normalized record, read from its Avro bytes; the writer schema of each record."""

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

from espstream.schemas.avro import registry_unreachable

from .errors import ExportError

UNKNOWN_DATE = "unknown"
FRAMING_BYTES = 5  # Confluent framing: magic byte 0, then the schema id (4 bytes, big-endian)
_MICROS_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)


def date_reader(schema: Any, verify: bool = False) -> Callable[[bytes], str]:
    """The event date (``YYYY-MM-DD`` or ``unknown``) of a framed record value written with ``schema``.

    fastavro decodes a whole event in ~30 µs here, more than the export's whole
    budget per event. While the fields before ``timestamp`` are plain strings,
    numbers and enums (as in every version of the event schema so far), the
    timestamp is reached by stepping over their lengths and varints, a few
    bytes; the rest of the record is not looked at. Records without a
    timestamp, schemas laid out otherwise, and every record with ``verify``
    are decoded by fastavro, which also checks that the bytes are the whole
    record. Raises ValueError for a schema that is not a record's.
    """
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("the writer schema is not a record's")
    parsed = parse_schema(schema)

    def decoded_date(value: bytes) -> str:
        body = io.BytesIO(value)
        body.seek(FRAMING_BYTES)
        record = schemaless_reader(body, parsed, None)
        if body.tell() != len(value):
            raise ValueError(f"{len(value) - body.tell()} bytes after the event")
        return _date_of_record(record)

    steps = None if verify else _steps_to_timestamp(schema)
    if steps is None:
        return decoded_date

    def date_of(value: bytes) -> str:
        micros = _timestamp_micros(value, steps)
        return decoded_date(value) if micros is None else _day(micros)

    return date_of


def _date_of_record(record: dict[str, Any]) -> str:
    moment = record.get("timestamp")
    if not isinstance(moment, datetime):
        moment = (record.get("provenance") or {}).get("received_at")
    if not isinstance(moment, datetime):
        return UNKNOWN_DATE
    return moment.astimezone(UTC).date().isoformat()


_LENGTH_PREFIXED = -1
_VARINT = -2
_FIXED_WIDTH = {"null": 0, "boolean": 1, "float": 4, "double": 8}
_DAYS: dict[int, str] = {}


def _steps_to_timestamp(schema: dict[str, Any]) -> tuple[int, ...] | None:
    """How to step over the fields before ``timestamp``; None unless all are simple and it is [null, timestamp-micros]."""
    steps = []
    for avro_field in schema.get("fields", ()):
        if avro_field["name"] == "timestamp":
            return tuple(steps) if _nullable_micros(avro_field["type"]) else None
        step = _step(avro_field["type"])
        if step is None:
            return None
        steps.append(step)
    return None


def _step(avro_type: Any) -> int | None:
    name = avro_type.get("type") if isinstance(avro_type, dict) else avro_type
    if name in ("string", "bytes"):
        return _LENGTH_PREFIXED
    if name in ("int", "long", "enum"):
        return _VARINT
    return _FIXED_WIDTH.get(name) if isinstance(name, str) else None


def _nullable_micros(avro_type: Any) -> bool:
    return (
        isinstance(avro_type, list)
        and len(avro_type) == 2
        and avro_type[0] == "null"
        and isinstance(avro_type[1], dict)
        and avro_type[1].get("type") == "long"
        and avro_type[1].get("logicalType") == "timestamp-micros"
    )


def _timestamp_micros(value: bytes, steps: tuple[int, ...]) -> int | None:
    """The timestamp of a framed value, None when null. IndexError/ValueError when the bytes end early or are wrong."""
    position = FRAMING_BYTES
    for step in steps:
        if step == _LENGTH_PREFIXED:
            byte = value[position]
            if byte < 0x80:  # a length under 64: one byte, the common case
                length, position = (byte >> 1) ^ -(byte & 1), position + 1
            else:
                length, position = _varint(value, position)
            if length < 0:
                raise ValueError("negative length")
            position += length
        elif step == _VARINT:
            while value[position] & 0x80:
                position += 1
            position += 1
        else:
            position += step
    branch = value[position]  # the union's branch as a zigzag varint: 0 is null, 2 the timestamp
    if branch == 0:
        return None
    if branch != 2:
        raise ValueError(f"timestamp union branch {branch} is not null nor a timestamp")
    return _varint(value, position + 1)[0]


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """The zigzag varint (Avro int or long) at ``position``, and the position after it."""
    byte = data[position]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), position + 1
    result = byte & 0x7F
    shift = 7
    while True:
        position += 1
        byte = data[position]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), position + 1
        shift += 7


def _day(micros: int) -> str:
    days = micros // _MICROS_PER_DAY
    text = _DAYS.get(days)
    if text is None:
        try:
            text = (_EPOCH + timedelta(days=days)).isoformat()
        except OverflowError:
            text = UNKNOWN_DATE
        _DAYS[days] = text
    return text


@dataclass(frozen=True, slots=True)
class WriterSchema:
    schema_id: int
    schema: dict[str, Any]
    date_of: Callable[[bytes], str]


class WriterSchemas:
    """The registry's schema for each schema id met, by the framing bytes of the records."""

    def __init__(self, registry: SchemaRegistryClient, verify: bool = False):
        self.registry = registry
        self.verify = verify
        self._by_framing: dict[bytes, WriterSchema] = {}

    def of(self, value: bytes) -> WriterSchema:
        """The writer schema of a framed value. ValueError when it has none; ExportError when the registry is down."""
        found = self._by_framing.get(value[:FRAMING_BYTES])
        return found if found is not None else self._fetch(value)

    def _fetch(self, value: bytes) -> WriterSchema:
        if len(value) < FRAMING_BYTES or value[0] != 0:
            raise ValueError("not Confluent-framed Avro (no magic byte 0 and schema id)")
        schema_id = int.from_bytes(value[1:FRAMING_BYTES], "big")
        try:
            registered = self.registry.get_schema(schema_id)
        except Exception as error:
            if registry_unreachable(error):
                raise ExportError(f"schema registry unreachable: {error}") from error
            raise ValueError(f"schema id {schema_id} is unknown to the registry ({error})") from error
        if registered.schema_type not in (None, "AVRO"):
            raise ValueError(f"schema id {schema_id} is a {registered.schema_type} schema, not Avro")
        schema = json.loads(registered.schema_str)
        writer_schema = WriterSchema(schema_id, schema, date_reader(schema, self.verify))
        self._by_framing[value[:FRAMING_BYTES]] = writer_schema
        return writer_schema
