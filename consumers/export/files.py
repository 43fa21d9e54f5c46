"""Avro container files by event date: written under a temporary name, renamed when complete."""

import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import fastavro
from fastavro.write import Writer

from .dates import FRAMING_BYTES, WriterSchema
from .errors import ExportError
from .formats import DecodedFile

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
FILE_NAME = re.compile(
    r"^(?P<topic>.+)-p(?P<partition>\d+)-(?P<first>\d+)-(?P<last>\d+)-schema(?P<schema>\d+)\.(?P<format>avro|parquet|jsonl)$"
)


def file_name(topic: str, partition: int, first_offset: int, last_offset: int, schema_id: int, file_format: str = "avro") -> str:
    return f"{topic}-p{partition}-{first_offset}-{last_offset}-schema{schema_id}.{file_format}"


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
                 first_offset: int, compression_level: int, file_format: str = "avro"):
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
        self.format = file_format
        # Parquet and JSON lines: made of the decoded events (formats.py); Avro: of their bytes, below.
        self._decoded = DecodedFile(self.temp_path, schema, file_format) if file_format != "avro" else None
        if self._decoded is not None:
            return
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
        if self._decoded is not None:
            self._decoded.add(body)
            self.last_offset = offset
            self.events += 1
            return
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
        if self._decoded is not None:
            self._decoded.finish()
            _fsync(self.temp_path)
        else:
            if self._pending:
                self._write_block()
            self._writer.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        path = self.directory / file_name(self.topic, self.partition, self.first_offset, self.last_offset, self.schema_id, self.format)
        if path.exists() and _contents(path, self.format) != _contents(self.temp_path, self.format):
            # Same name, other records: the topic's offsets restarted since that export. Its
            # records may be on no broker any more; replacing the file would lose them.
            self.temp_path.unlink(missing_ok=True)
            raise ExportError(
                f"{path} holds other records than offsets {self.first_offset}-{self.last_offset} of {self.topic}"
                f" partition {self.partition} now do (did the topic's offsets restart?); it was left as it is:"
                " export into another directory, or move it away"
            )
        os.replace(self.temp_path, path)  # atomic: readers see the old file or the whole new one
        _fsync(self.directory)  # the rename itself survives a crash
        return WrittenFile(path, self.date, self.partition, self.first_offset, self.last_offset, self.schema_id,
                           self.events, path.stat().st_size)

    def discard(self) -> None:
        if self._decoded is not None:
            self._decoded.discard()
        else:
            self._file.close()
        self.temp_path.unlink(missing_ok=True)


def _contents(path: Path, file_format: str = "avro") -> tuple[str, bytes] | None:
    """A container file's writer schema and a digest of its records' encodings; None if it is no container file.

    The same records give the same value whatever the compression level or block sizes.
    A Parquet or JSON-lines file: its bytes' digest (they depend only on its records).
    """
    digest = hashlib.blake2b(digest_size=32)
    if file_format != "avro":
        with open(path, "rb") as file:
            digest.update(file.read())
        return "", digest.digest()
    try:
        with open(path, "rb") as file:
            blocks = fastavro.block_reader(file)
            for block in blocks:
                digest.update(block.bytes_.getvalue())
            return str(blocks.metadata.get("avro.schema")), digest.digest()
    except Exception:  # whatever fastavro makes of bytes that are no container file: nothing to match
        return None


def _fsync(path: Path) -> None:
    """Sync a file (or directory) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class PartitionExport:
    """The files of one topic partition's records, by event date and writer schema."""

    def __init__(self, out_dir: Path, topic: str, partition: int, compression_level: int, file_format: str = "avro"):
        self.out_dir = out_dir
        self.format = file_format
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
                self.compression_level, self.format,
            )
        output.add(value[FRAMING_BYTES:], offset)
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
