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

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

from espstream.plumbing.config import CommonSettings

from .dates import WriterSchemas
from .errors import ExportError, UndecodableRecord
from .files import DEFAULT_COMPRESSION_LEVEL, FILE_NAME, PartitionExport, WrittenFile

log = logging.getLogger("espstream.export")

CONSUME_BATCH = 5000
POLL_SECONDS = 0.5
# No record nor end-of-partition for this long: the broker is gone.
IDLE_TIMEOUT_SECONDS = 60.0
METADATA_TIMEOUT_SECONDS = 15.0


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
        since = self.start.isoformat() if self.start else "the beginning"
        lines = [
            f"exported {self.events} events of {self.topic} written from {since} until {self.end.isoformat()}"
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
        partitions: dict[int, PartitionExport] = {}
        try:
            starts = self._start_offsets(consumer)
            partitions = {p: PartitionExport(self.out_dir, self.topic, p, self.compression_level) for p in starts}
            self._read(consumer, starts, partitions, summary)
        except BaseException:
            for partition in partitions.values():
                partition.discard()
            raise
        finally:
            consumer.close()
        for partition in partitions.values():
            summary.files.extend(partition.written)
        summary.overlapping = self._overlapping(partitions.values())
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

    def _read(self, consumer: Consumer, starts: dict[int, int], partitions: dict[int, "PartitionExport"],
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
    def _finish(consumer: Consumer, partition: PartitionExport, reading: dict[int, PartitionExport]) -> None:
        partition.finish()
        del reading[partition.partition]
        consumer.pause([TopicPartition(partition.topic, partition.partition)])

    def _overlapping(self, partitions: Any) -> list[Path]:
        """Earlier exports' files of this topic whose offsets overlap what this run read; never removed."""
        ranges = {p.partition: (p.first_read, p.last_read) for p in partitions if p.first_read is not None}
        ours = {written.path for p in partitions for written in p.written}
        overlapping = []
        for path in sorted(self.out_dir.glob("date=*/*.avro")):
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
