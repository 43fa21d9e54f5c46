"""``espstream export``: the normalized topic's events over a time range, as Avro files by event date.

What is read. ``start`` and ``end`` are Kafka record times: when the normalizer
wrote the event to the topic, not when it happened. In each partition the export
reads from the first record at or after ``start`` up to, not including, the
first record at or after ``end``, or to the partition's end. ``offsets_for_times``
finds the start; records before ``start`` from where it points are skipped, as
some brokers (the embedded one, for records written with an earlier time than
their arrival) point too early.
Consecutive ranges (``A..B``, then ``B..C``) thus read every record exactly
once, whatever the events' own dates: a periodic export job neither misses nor
repeats a record, and finds each range's start without scanning.

Layout. ``OUT/date=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>-schema<id>.avro``:
a directory per event date (the event's ``timestamp`` in UTC, else when the
gateway received the webhook, else ``date=unknown``), in it one file per topic
partition, writer schema and run of offsets (first and last offset of the
records it holds). An event that arrives late for an old date lands in a new
file of that date's directory, named by its own offsets: no export overwrites
the file of an export of another range.

Files. Avro Object Container Files with the records' writer schema (as the
registry has it for their schema id: a file never mixes two) and the deflate
codec, written under a hidden temporary name and renamed once complete, so a
reader never sees half a file. Their bytes depend only on the records read, so
re-running an export writes the same files under the same names; files of
earlier exports whose offsets lie wholly inside what a run read are removed,
so exporting an extended range again replaces rather than duplicates.

Speed. Records are not decoded and re-encoded: a normalized record's value is
the Confluent framing (magic byte, schema id) followed by the event's Avro
binary encoding under that writer schema, and a container block is such
encodings concatenated. Only the event date is read from each record.
"""

import hashlib
import io
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader
from fastavro.write import Writer

from espstream.config import CommonSettings
from schemas.avro import registry_unreachable

log = logging.getLogger("espstream.export")

# deflate is one of the two codecs the Avro specification requires of every
# implementation (with null): fastavro, pandas through fastavro, Spark, DuckDB and
# Java read it with nothing more installed. snappy would need python-snappy or
# cramjam beside fastavro, zstandard and lz4 likewise.
CODEC = "deflate"
# zlib level 1: on these events about half the CPU of the default level 6
# (~5 instead of ~10 µs an event) for files about a quarter larger (~9% instead
# of ~7% of the records' size).
DEFAULT_COMPRESSION_LEVEL = 1
# Uncompressed bytes per container block. Readers (Spark) split files at block
# boundaries; larger blocks compress better.
BLOCK_BYTES = 256 * 1024
# A file is closed and the next one begun after this many events.
MAX_FILE_EVENTS = 1_000_000
# Files open at once per partition (dates being written); past it the one
# written least recently is closed, and a later event of its date starts a new one.
MAX_OPEN_FILES = 32
UNKNOWN_DATE = "unknown"

CONSUME_BATCH = 5000
POLL_SECONDS = 0.5
# No record nor end-of-partition for this long: the broker is gone.
IDLE_TIMEOUT_SECONDS = 60.0
METADATA_TIMEOUT_SECONDS = 15.0

_FRAMING_BYTES = 5  # Confluent framing: magic byte 0, then the schema id (4 bytes, big-endian)
_MICROS_PER_DAY = 86_400_000_000
_EPOCH = date(1970, 1, 1)
_FILE_NAME = re.compile(r"^(?P<topic>.+)-p(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)-schema(?P<schema>\d+)\.avro$")


class ExportError(Exception):
    """The export cannot go on: the message says why."""


class UndecodableRecord(ExportError):
    """A record that is not an event the registry's schemas describe."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str):
        super().__init__(f"{topic} partition {partition} offset {offset}: {reason}")
        self.partition = partition
        self.offset = offset


def file_name(topic: str, partition: int, first_offset: int, last_offset: int, schema_id: int) -> str:
    return f"{topic}-p{partition}-{first_offset}-{last_offset}-schema{schema_id}.avro"


# ---------------------------------------------------------------------------
# The event date of a record


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
        body.seek(_FRAMING_BYTES)
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
    position = _FRAMING_BYTES
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


# ---------------------------------------------------------------------------
# Writer schemas


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
        found = self._by_framing.get(value[:_FRAMING_BYTES])
        return found if found is not None else self._fetch(value)

    def _fetch(self, value: bytes) -> WriterSchema:
        if len(value) < _FRAMING_BYTES or value[0] != 0:
            raise ValueError("not Confluent-framed Avro (no magic byte 0 and schema id)")
        schema_id = int.from_bytes(value[1:_FRAMING_BYTES], "big")
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
        self._by_framing[value[:_FRAMING_BYTES]] = writer_schema
        return writer_schema


# ---------------------------------------------------------------------------
# Files


class _Block:
    """What fastavro's ``Writer.write_block`` reads of a block: its records' encodings and their count."""

    __slots__ = ("bytes_", "num_records")

    def __init__(self, data: bytes, num_records: int):
        self.bytes_ = io.BytesIO(data)
        self.num_records = num_records


@dataclass(slots=True)
class WrittenFile:
    path: Path
    date: str
    partition: int
    first_offset: int
    last_offset: int
    schema_id: int
    events: int
    bytes: int


class _OutputFile:
    """One container file being written, under a hidden temporary name until ``close`` renames it."""

    def __init__(self, directory: Path, topic: str, partition: int, event_date: str, schema: WriterSchema,
                 first_offset: int, compression_level: int):
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self.date = event_date
        self.schema_id = schema.schema_id
        self.first_offset = self.last_offset = first_offset
        self.events = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        directory.mkdir(parents=True, exist_ok=True)
        # Hidden (Spark, Hive and shell globs skip dot files) and not *.avro until complete.
        self.temp_path = directory / f".{topic}-p{partition}-{first_offset}-schema{schema.schema_id}.{uuid.uuid4().hex}.tmp"
        self._file = open(self.temp_path, "wb")
        identity = f"{topic}\0{partition}\0{first_offset}\0{schema.schema_id}\0{event_date}"
        self._writer = Writer(
            self._file,
            schema.schema,
            codec=CODEC,
            compression_level=compression_level,
            # Derived from what the file holds rather than random, so a re-run writes the same bytes.
            sync_marker=hashlib.blake2b(identity.encode(), digest_size=16).digest(),
            metadata={
                "espstream.topic": topic,
                "espstream.partition": str(partition),
                "espstream.schema_id": str(schema.schema_id),
            },
        )

    def add(self, body: bytes, offset: int) -> None:
        self._pending.append(body)
        self._pending_bytes += len(body)
        self.last_offset = offset
        self.events += 1
        if self._pending_bytes >= BLOCK_BYTES:
            self._write_block()

    def _write_block(self) -> None:
        # fastavro writes the block count, compresses with the file's codec and adds the sync marker.
        self._writer.write_block(_Block(b"".join(self._pending), len(self._pending)))
        self._pending = []
        self._pending_bytes = 0

    def close(self) -> WrittenFile:
        if self._pending:
            self._write_block()
        self._writer.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        path = self.directory / file_name(self.topic, self.partition, self.first_offset, self.last_offset, self.schema_id)
        os.replace(self.temp_path, path)  # atomic: readers see the old file or the whole new one
        _fsync_directory(self.directory)  # the rename itself survives a crash
        return WrittenFile(path, self.date, self.partition, self.first_offset, self.last_offset, self.schema_id,
                           self.events, path.stat().st_size)

    def discard(self) -> None:
        self._file.close()
        self.temp_path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _PartitionExport:
    """The files of one topic partition's records, by event date and writer schema."""

    def __init__(self, out_dir: Path, topic: str, partition: int, compression_level: int):
        self.out_dir = out_dir
        self.topic = topic
        self.partition = partition
        self.compression_level = compression_level
        self.open: dict[tuple[str, int], _OutputFile] = {}
        self.written: list[WrittenFile] = []
        self.first_read: int | None = None
        self.last_read: int | None = None
        self.started = False  # a record at or after the range's start was read

    def read(self, offset: int) -> None:
        """``offset`` was read (exported or skipped): the range this export covers."""
        if self.first_read is None:
            self.first_read = offset
        self.last_read = offset

    def add(self, event_date: str, schema: WriterSchema, value: bytes, offset: int) -> None:
        key = (event_date, schema.schema_id)
        output = self.open.get(key)
        if output is None:
            if len(self.open) >= MAX_OPEN_FILES:
                self._close(min(self.open, key=lambda k: self.open[k].last_offset))
            output = self.open[key] = _OutputFile(
                self.out_dir / f"date={event_date}", self.topic, self.partition, event_date, schema, offset,
                self.compression_level,
            )
        output.add(value[_FRAMING_BYTES:], offset)
        if output.events >= MAX_FILE_EVENTS:
            self._close(key)

    def finish(self) -> None:
        for key in sorted(self.open, key=lambda k: self.open[k].first_offset):
            self._close(key)

    def discard(self) -> None:
        for output in self.open.values():
            output.discard()
        self.open.clear()

    def _close(self, key: tuple[str, int]) -> None:
        self.written.append(self.open.pop(key).close())


# ---------------------------------------------------------------------------
# The export


@dataclass(slots=True)
class DateTotals:
    events: int = 0
    files: int = 0
    bytes: int = 0


@dataclass
class Summary:
    """What an export wrote."""

    topic: str
    out_dir: Path
    start: datetime | None
    end: datetime
    files: list[WrittenFile] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # undecodable records, with skip_undecodable

    @property
    def events(self) -> int:
        return sum(written.events for written in self.files)

    @property
    def bytes(self) -> int:
        return sum(written.bytes for written in self.files)

    @property
    def dates(self) -> dict[str, DateTotals]:
        totals: dict[str, DateTotals] = {}
        for written in sorted(self.files, key=lambda w: w.date):
            date_totals = totals.setdefault(written.date, DateTotals())
            date_totals.events += written.events
            date_totals.files += 1
            date_totals.bytes += written.bytes
        return totals

    def lines(self) -> list[str]:
        since = self.start.isoformat() if self.start else "the beginning"
        lines = [
            f"exported {self.events} events of {self.topic} written from {since} until {self.end.isoformat()}"
            f" to {self.out_dir}: {len(self.files)} files, {self.bytes} bytes"
        ]
        for event_date, totals in self.dates.items():
            lines.append(f"  date={event_date}  {totals.events} events  {totals.files} files  {totals.bytes} bytes")
        if self.replaced:
            lines.append(f"replaced {len(self.replaced)} files of earlier exports of these offsets")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} undecodable records")
        return lines


class Exporter:
    def __init__(
        self,
        settings: CommonSettings,
        out_dir: Path | str,
        *,
        topic: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        skip_undecodable: bool = False,
        verify: bool = False,
    ):
        """Records written from ``start`` (None: the oldest) until ``end`` (None: now), into ``out_dir``.

        A record is exported when its framing names a schema the registry has and
        its bytes up to the event's date decode with it. ``verify`` decodes each
        record whole with fastavro (about four times the CPU), so that bytes a
        faulty producer wrote under a valid schema id stop the export too rather
        than end up in a file. ``skip_undecodable`` leaves records that do not
        decode out (listed in the summary) instead of stopping at the first with an
        ``UndecodableRecord``.
        """
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.topic = topic or settings.normalized_topic
        self.start = start
        self.end = end if end is not None else datetime.now(UTC)
        if start is not None and start >= self.end:
            raise ValueError(f"the range is empty: {start.isoformat()} is not before {self.end.isoformat()}")
        if not 0 <= compression_level <= 9:
            raise ValueError(f"compression level {compression_level} is not 0-9")
        self.compression_level = compression_level
        self.skip_undecodable = skip_undecodable
        self.schemas = WriterSchemas(SchemaRegistryClient(settings.registry()), verify)

    def run(self) -> Summary:
        """Write the files; the summary of what was written. Raises ExportError."""
        summary = Summary(self.topic, self.out_dir, self.start, self.end)
        log.info("exporting %s written from %s until %s to %s", self.topic,
                 self.start.isoformat() if self.start else "the beginning", self.end.isoformat(), self.out_dir)
        consumer = Consumer(
            self.settings.kafka(
                **{
                    # assign() joins no group; a fresh id keeps even a stray commit away from real groups.
                    "group.id": f"espstream-export-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    # The end of a partition is where its end-of-partition event says, never its
                    # high watermark (which an embedded broker reports short of a batch's end).
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        partitions: dict[int, _PartitionExport] = {}
        try:
            starts = self._start_offsets(consumer)
            partitions = {p: _PartitionExport(self.out_dir, self.topic, p, self.compression_level) for p in starts}
            self._read(consumer, starts, partitions, summary)
        except BaseException:
            for partition in partitions.values():
                partition.discard()
            raise
        finally:
            consumer.close()
        for partition in partitions.values():
            summary.files.extend(partition.written)
        summary.replaced = self._remove_replaced(partitions.values())
        return summary

    def _start_offsets(self, consumer: Consumer) -> dict[int, int]:
        """Per partition the first offset to read; partitions with no record at or after ``start`` are left out."""
        try:
            metadata = consumer.list_topics(self.topic, timeout=METADATA_TIMEOUT_SECONDS).topics.get(self.topic)
        except KafkaException as error:
            raise ExportError(f"cannot reach the broker: {error}") from error
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ExportError(f"topic {self.topic!r} does not exist")
        partitions = sorted(metadata.partitions)
        if self.start is None:
            return {p: OFFSET_BEGINNING for p in partitions}
        start_ms = int(self.start.timestamp() * 1000)
        try:
            found = consumer.offsets_for_times(
                [TopicPartition(self.topic, p, start_ms) for p in partitions], timeout=METADATA_TIMEOUT_SECONDS
            )
        except KafkaException as error:
            raise ExportError(f"cannot look up the offsets of {self.start.isoformat()}: {error}") from error
        for position in found:
            if position.error is not None:
                raise ExportError(f"partition {position.partition}: {position.error}")
        # A negative offset: no record at or after start (yet) in that partition.
        return {position.partition: position.offset for position in found if position.offset >= 0}

    def _read(self, consumer: Consumer, starts: dict[int, int], partitions: dict[int, "_PartitionExport"],
              summary: Summary) -> None:
        if not starts:
            return
        consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in starts.items()])
        reading = dict(partitions)
        end_ms = int(self.end.timestamp() * 1000)
        start_ms = int(self.start.timestamp() * 1000) if self.start is not None else None
        for partition in partitions.values():
            partition.started = start_ms is None
        schemas = self.schemas
        last_progress = time.monotonic()
        while reading:
            messages = consumer.consume(CONSUME_BATCH, timeout=POLL_SECONDS)
            if not messages:
                if time.monotonic() - last_progress > IDLE_TIMEOUT_SECONDS:
                    raise ExportError(f"nothing read for {IDLE_TIMEOUT_SECONDS:.0f}s; partitions {sorted(reading)} unfinished")
                continue
            last_progress = time.monotonic()
            for message in messages:
                partition = reading.get(message.partition())
                if partition is None:
                    continue  # fetched past the end of a finished partition
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise ExportError(f"reading {self.topic} partition {partition.partition}: {error}")
                    self._finish(consumer, partition, reading)
                    continue
                timestamp_type, timestamp_ms = message.timestamp()
                if timestamp_type != TIMESTAMP_NOT_AVAILABLE:
                    if timestamp_ms >= end_ms:
                        self._finish(consumer, partition, reading)
                        continue
                    if not partition.started:
                        if timestamp_ms < start_ms:
                            continue  # before the range: the broker's offset for the start was early
                        partition.started = True
                offset = message.offset()
                partition.read(offset)
                value = message.value()
                try:
                    if value is None:
                        raise ValueError("the record has no value")
                    schema = schemas.of(value)
                    event_date = schema.date_of(value)
                except ExportError:
                    raise
                except Exception as error:  # whatever fastavro or the framing makes of bytes that are no event
                    self._undecodable(message, error, summary)
                    continue
                partition.add(event_date, schema, value, offset)

    def _undecodable(self, message: Message, error: Exception, summary: Summary) -> None:
        problem = UndecodableRecord(self.topic, message.partition(), message.offset(), f"{type(error).__name__}: {error}")
        if not self.skip_undecodable:
            raise problem from error
        log.warning("skipped: %s", problem)
        summary.skipped.append(str(problem))

    @staticmethod
    def _finish(consumer: Consumer, partition: _PartitionExport, reading: dict[int, _PartitionExport]) -> None:
        partition.finish()
        del reading[partition.partition]
        consumer.pause([TopicPartition(partition.topic, partition.partition)])

    def _remove_replaced(self, partitions: Any) -> list[Path]:
        """Remove earlier exports' files of this topic whose offsets lie within what this run read."""
        ranges = {p.partition: (p.first_read, p.last_read) for p in partitions if p.first_read is not None}
        ours = {written.path for p in partitions for written in p.written}
        replaced = []
        for path in sorted(self.out_dir.glob("date=*/*.avro")):
            match = _FILE_NAME.match(path.name)
            if match is None or match["topic"] != self.topic or path in ours:
                continue
            covered = ranges.get(int(match["partition"]))
            if covered is None:
                continue
            first, last = int(match["first"]), int(match["last"])
            if covered[0] <= first and last <= covered[1]:
                path.unlink(missing_ok=True)
                replaced.append(path)
            elif first <= covered[1] and covered[0] <= last:
                log.warning("%s overlaps the offsets this export read only in part: its records there are now in two files", path)
        return replaced

