"""Reading the normalized topic over a range of record times into container files.

An export never deletes a file of an earlier export. Re-running the same range
rewrites files of the same names with the same records (a file of the same name
holding other records stops the export: see ``files``). Earlier files whose
offsets overlap what a run read are left in place and listed in a warning: the
offsets alone do not prove their records were read again. A skipped undecodable
record still widens the span read, and offsets restart when a topic is deleted
and recreated, a cluster is migrated or the memory-only embedded broker restarts,
so an earlier file inside the span may hold records this run never wrote.
Deleting only files whose records were proven rewritten (a fingerprint of their
first and last records in their metadata, compared with what the run read there,
and no skip in their partition) would have to reason about files split by date,
schema and size; keeping every file and asking for consecutive ranges is simpler
and cannot lose history.
"""

import importlib.util
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaException, Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.reader import Bounds, NoSuchTopic, TopicReader
from espstream.plumbing.times import format_time, millis

from .dates import WriterSchemas
from .errors import ExportError, UndecodableRecord
from .files import DEFAULT_COMPRESSION_LEVEL, FILE_NAME, PartitionExport, WrittenFile
from .formats import FORMATS

log = logging.getLogger("espstream.export")


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
    # Earlier exports' files within the offsets read: left in place, their events possibly in two files.
    overlapping: list[Path] = field(default_factory=list)
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
        since = format_time(self.start) if self.start else "the beginning"
        lines = [
            f"exported {self.events} events of {self.topic} written from {since} until {format_time(self.end)}"
            f" to {self.out_dir}: {len(self.files)} files, {self.bytes} bytes"
        ]
        for event_date, totals in self.dates.items():
            lines.append(f"  date={event_date}  {totals.events} events  {totals.files} files  {totals.bytes} bytes")
        if self.overlapping:
            lines.append(f"warning: {len(self.overlapping)} files of earlier exports overlap the offsets this export read;"
                         " they were left in place, so events in both are now in two files"
                         " (keep ranges consecutive, or delete the older files):")
            lines.extend(f"  {path}" for path in self.overlapping)
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
        file_format: str = "avro",
    ):
        """Records written from ``start`` (None: the oldest) until ``end`` (None: now), into ``out_dir``.

        A record is exported when its framing names a schema the registry has and
        its bytes up to the event's date decode with it. ``verify`` decodes each
        record whole with fastavro (about four times the CPU), so that bytes a
        faulty producer wrote under a valid schema id stop the export too rather
        than end up in a file. ``skip_undecodable`` leaves records that do not
        decode out (listed in the summary) instead of stopping at the first with an
        ``UndecodableRecord``. ``file_format``: ``avro``, ``parquet`` (pyarrow) or
        ``jsonl`` (formats.py).
        """
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.topic = topic or settings.normalized_topic
        self.start = start
        self.end = end if end is not None else datetime.now(UTC)
        if start is not None and start >= self.end:
            raise ValueError(f"the range is empty: {format_time(start)} is not before {format_time(self.end)}")
        if not 0 <= compression_level <= 9:
            raise ValueError(f"compression level {compression_level} is not 0-9")
        self.compression_level = compression_level
        if file_format not in FORMATS:
            raise ValueError(f"format {file_format!r} is not one of {', '.join(FORMATS)}")
        if file_format == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ValueError("--format parquet needs pyarrow: pip install 'espstream[parquet]'")
        self.format = file_format
        self.skip_undecodable = skip_undecodable
        self.schemas = WriterSchemas(SchemaRegistryClient(settings.registry()), verify)

    def run(self) -> Summary:
        """Write the files; the summary of what was written. Raises ExportError."""
        summary = Summary(self.topic, self.out_dir, self.start, self.end)
        log.info("exporting %s written from %s until %s to %s", self.topic,
                 format_time(self.start) if self.start else "the beginning", format_time(self.end), self.out_dir)
        partitions: dict[int, PartitionExport] = {}
        try:
            with TopicReader(self.settings.kafka(), self.topic) as reader:
                bounds = self._bounds(reader)
                partitions = {
                    p: PartitionExport(self.out_dir, self.topic, p, self.compression_level, self.format) for p in bounds
                }
                self._read(reader, bounds, partitions, summary)
        except BaseException:
            for partition in partitions.values():
                partition.discard()
            raise
        for partition in partitions.values():
            summary.files.extend(partition.written)
        summary.overlapping = self._overlapping(partitions.values())
        return summary

    def _bounds(self, reader: TopicReader) -> Bounds:
        """Per partition the offsets from the first record at or after ``start`` to the end now."""
        try:
            return reader.bounds(since=millis(self.start) if self.start is not None else None)
        except NoSuchTopic:
            raise ExportError(f"topic {self.topic!r} does not exist") from None
        except KafkaException as error:
            raise ExportError(f"cannot read {self.topic}: {error}") from error

    def _read(self, reader: TopicReader, bounds: Bounds, partitions: dict[int, "PartitionExport"], summary: Summary) -> None:
        start_ms = millis(self.start) if self.start is not None else None
        for partition in partitions.values():
            partition.started = start_ms is None
        schemas = self.schemas
        try:
            # A partition ends at the end of the range's records: its end now, or its first record written at or after ``end``.
            for message in reader.read(bounds, until=millis(self.end)):
                partition = partitions[message.partition()]
                timestamp_type, timestamp_ms = message.timestamp()
                if timestamp_type != TIMESTAMP_NOT_AVAILABLE and not partition.started:
                    if timestamp_ms < start_ms:  # type: ignore[operator]
                        continue  # before the range: timestamps out of order
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
        except KafkaException as error:
            raise ExportError(f"reading {self.topic}: {error}") from error
        for partition in partitions.values():
            partition.finish()

    def _undecodable(self, message: Message, error: Exception, summary: Summary) -> None:
        problem = UndecodableRecord(self.topic, message.partition(), message.offset(), f"{type(error).__name__}: {error}")
        if not self.skip_undecodable:
            raise problem from error
        log.warning("skipped: %s", problem)
        summary.skipped.append(str(problem))

    def _overlapping(self, partitions: Any) -> list[Path]:
        """Earlier exports' files of this topic whose offsets overlap what this run read; never removed."""
        ranges = {p.partition: (p.first_read, p.last_read) for p in partitions if p.first_read is not None}
        ours = {written.path for p in partitions for written in p.written}
        overlapping = []
        for path in sorted(self.out_dir.glob(f"date=*/*.{self.format}")):
            match = FILE_NAME.match(path.name)
            if match is None or match["topic"] != self.topic or path in ours:
                continue
            covered = ranges.get(int(match["partition"]))
            if covered is not None and int(match["first"]) <= covered[1] and covered[0] <= int(match["last"]):
                overlapping.append(path)
        if overlapping:
            log.warning("left in place %d files of earlier exports that overlap the offsets read"
                        " (keep ranges consecutive, or delete the older files): %s",
                        len(overlapping), ", ".join(map(str, overlapping)))
        return overlapping
