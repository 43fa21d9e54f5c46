"""Replaying raw history through the current normalizer, after a fix.

``espstream replay`` reads a range of the raw topic (normalizer.ranges) with
assign(), never as the live normalizer's group, and sends each record through
``RecordNormalizer``, the service's own code path: the events go to the
normalized topic (or another), failures to the dead-letter topic with the
service's headers. Event ids are deterministic, so a replayed event carries the
``dedupe_id`` it had before.

At least once, as in the service: a batch's events and dead letters are all
acknowledged before its offsets are committed; if any is not, the batch is read
again. Progress is the consumer group ``espstream-replay.<name>``: committed with
assign(), which joins no group. The range's ends, fixed at the first start, are
committed as the offsets of ``espstream-replay.<name>.end``, so a replay stopped
any way (Ctrl-C, SIGTERM, SIGKILL, a crash) resumes where its last commit was
when it is run again with the same name, and a finished one says so.
"""

import hashlib
import json
import logging
import os
import signal as signals
import sys
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.batches import RETRY_BACKOFF_SECONDS, durable_consumer_config
from espstream.plumbing.offsets import first_offsets, next_offsets
from espstream.plumbing.producer import DurableProducer
from espstream.plumbing.reader import READ_TIMEOUT_SECONDS, Bounds, TopicReader
from espstream.plumbing.topics import create_missing, wanted_topics
from espstream.schemas.avro import EventSerializer

from .ranges import RangeError, RangeSpec, partitions, record_esp, resolve
from .records import RecordNormalizer, write_outcome
from .settings import NormalizerSettings

log = logging.getLogger("espstream.replay")

GROUP_PREFIX = "espstream-replay."
PROGRESS_SECONDS = 5.0


class ReplayError(RuntimeError):
    """The replay cannot run now (e.g. the schema registry is unreachable)."""


def progress_group(name: str) -> str:
    return f"{GROUP_PREFIX}{name}"


def end_group(name: str) -> str:
    return f"{GROUP_PREFIX}{name}.end"


def default_name(raw_topic: str, spec: RangeSpec, esps: Collection[str] | None, to_topic: str, dlq_topic: str) -> str:
    """A name that is the same for the same range, ESPs and topics: running the same command again resumes."""
    identity = {"raw": raw_topic, **spec.identity(), "esps": sorted(esps or ()), "to": to_topic, "dlq": dlq_topic}
    digest = hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=6).hexdigest()
    return f"{to_topic}.{digest}"


@dataclass(slots=True)
class Counts:
    read: int = 0
    events: int = 0
    dead_letters: int = 0
    skipped: int = 0  # records of ESPs left out by --esp

    def add(self, other: "Counts") -> None:
        self.read += other.read
        self.events += other.events
        self.dead_letters += other.dead_letters
        self.skipped += other.skipped


@dataclass
class Summary:
    name: str
    source: str
    target: str
    dlq_topic: str
    status: str = "running"  # finished | interrupted | already finished
    partitions: dict[int, dict[str, int]] = field(default_factory=dict)  # start, end, resumed_from
    esps: dict[str, Counts] = field(default_factory=dict)
    seconds: float = 0.0  # the whole run
    busy_seconds: float = 0.0  # from the first record read to the last commit: what throughput is over

    @property
    def total(self) -> Counts:
        total = Counts()
        for counts in self.esps.values():
            total.add(counts)
        return total

    def add(self, batch: dict[str, Counts]) -> None:
        for esp, counts in batch.items():
            self.esps.setdefault(esp, Counts()).add(counts)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "source": self.source,
            "target": self.target,
            "dlq_topic": self.dlq_topic,
            "partitions": {str(p): bounds for p, bounds in sorted(self.partitions.items())},
            **{key: value for key, value in asdict(self.total).items()},
            "esps": {esp: asdict(counts) for esp, counts in sorted(self.esps.items())},
            "seconds": round(self.seconds, 3),
            "busy_seconds": round(self.busy_seconds, 3),
        }


class Checkpoint:
    """A replay's fixed ends and its progress, as committed offsets of two consumer groups."""

    def __init__(self, settings: NormalizerSettings, name: str, consumer: Consumer):
        self.topic = settings.raw_topic
        self.progress = consumer  # the reading consumer, in group espstream-replay.<name>
        self.ends = Consumer(durable_consumer_config(settings.kafka(**{"group.id": end_group(name)})))

    def close(self) -> None:
        self.ends.close()

    def load(self, partitions: list[int]) -> tuple[dict[int, int], dict[int, int]]:
        """(ends, progress) stored by an earlier run; empty ends when there was none."""
        wanted = [TopicPartition(self.topic, p) for p in partitions]
        ends = {tp.partition: tp.offset for tp in self.ends.committed(wanted, timeout=READ_TIMEOUT_SECONDS) if tp.offset >= 0}
        progress = {
            tp.partition: tp.offset for tp in self.progress.committed(wanted, timeout=READ_TIMEOUT_SECONDS) if tp.offset >= 0
        }
        return ends, progress

    def save_plan(self, bounds: Bounds) -> None:
        """Progress at the starts, then the ends: a run stopped in between resumes from the starts."""
        self.commit_progress({p: start for p, (start, _end) in bounds.items()})
        self.ends.commit(offsets=[TopicPartition(self.topic, p, end) for p, (_s, end) in bounds.items()], asynchronous=False)

    def commit_progress(self, offsets: dict[int, int]) -> None:
        self.progress.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=False)


class Progress:
    """A tqdm bar on a terminal, else a plain line every ``interval`` seconds and at the end."""

    def __init__(self, name: str, total: int, stream: TextIO, interval: float = PROGRESS_SECONDS):
        self.name = name
        self.total = total
        self.stream = stream
        self.interval = interval
        self.done = 0
        self.events = 0
        self.dead_letters = 0
        self.started = time.monotonic()
        self.last_line = self.started
        self.printed = -1  # records done at the last line
        self.bar = None
        if _is_terminal(stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="rec", desc=f"replay {name}", file=stream, ncols=_columns(stream))

    def update(self, counts: Counts) -> None:
        self.done += counts.read
        self.events += counts.events
        self.dead_letters += counts.dead_letters
        if self.bar is not None:
            self.bar.update(counts.read)
            self.bar.set_postfix(events=self.events, dead_letters=self.dead_letters, refresh=False)
        elif time.monotonic() - self.last_line >= self.interval:
            self.line()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.printed != self.done:
            self.line()

    def line(self) -> None:
        self.last_line = now = time.monotonic()
        self.printed = self.done
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta = f", ETA {_duration((self.total - self.done) / rate)}" if rate > 0 and self.done < self.total else ""
        print(
            f"replay {self.name}: {self.done}/{self.total} raw records ({percent:.0f}%), {self.events} events,"
            f" {self.dead_letters} dead letters, {rate:.0f} records/s{eta}",
            file=self.stream,
            flush=True,
        )


class Replay:
    def __init__(
        self,
        spec: RangeSpec,
        *,
        settings: NormalizerSettings | None = None,
        esps: Collection[str] | None = None,
        to_topic: str | None = None,
        dlq_topic: str | None = None,
        name: str | None = None,
        restart: bool = False,
        progress_stream: TextIO = sys.stderr,
        progress_interval: float = PROGRESS_SECONDS,
    ):
        self.settings = settings = settings or NormalizerSettings()
        self.spec = spec
        self.esps = frozenset(esps) if esps else None
        self.to_topic = to_topic or settings.normalized_topic
        self.dlq_topic = dlq_topic or settings.dlq_topic
        self.name = name or default_name(settings.raw_topic, spec, self.esps, self.to_topic, self.dlq_topic)
        self.restart = restart
        self.progress_stream = progress_stream
        self.progress_interval = progress_interval
        self._stopping = False
        self._producer_config = settings.producer(
            **{
                "message.max.bytes": settings.max_dead_letter_bytes,
                "message.timeout.ms": settings.normalizer_delivery_timeout_ms,
            }
        )
        self.summary = Summary(self.name, settings.raw_topic, self.to_topic, self.dlq_topic)

    def stop(self, *_args: object) -> None:
        """Finish and commit the batch in hand, then stop: running the same replay again resumes."""
        self._stopping = True

    def run(self) -> Summary:
        started = time.monotonic()
        reader = TopicReader(
            durable_consumer_config(self.settings.kafka(**{"group.id": progress_group(self.name)})), self.settings.raw_topic
        )
        checkpoint = Checkpoint(self.settings, self.name, reader.consumer)
        try:
            bounds = self._plan(reader, checkpoint)
            if all(start >= end for start, end in bounds.values()):
                self.summary.status = "already finished" if self.summary.status == "resumed" else "finished"
                return self.summary
            self._ensure_topics()
            serialize = EventSerializer(SchemaRegistryClient(self.settings.registry()), self.to_topic)
            try:
                serialize.register()  # before reading: no batch waits on the registry
            except Exception as error:
                raise ReplayError(f"schema registry: {type(error).__name__}: {error}") from error
            normalize = RecordNormalizer(serialize, self.settings.max_record_bytes, self.settings.normalize_options)
            self._replay(reader, checkpoint, bounds, normalize)
            self.summary.status = "interrupted" if self._stopping else "finished"
            return self.summary
        finally:
            self.summary.seconds = time.monotonic() - started
            checkpoint.close()
            reader.close()

    def _plan(self, reader: TopicReader, checkpoint: Checkpoint) -> Bounds:
        """Where to read from and to: an earlier run's ends and progress, or the spec resolved now."""
        ends, progress = ({}, {}) if self.restart else checkpoint.load(self.spec.partitions(partitions(reader)))
        if ends:
            starts = resolve(reader, self.spec, ends) if len(progress) < len(ends) else {}
            first = {p: starts[p][0] for p in starts}
            bounds = {p: (progress.get(p, first.get(p, end)), end) for p, end in ends.items()}
            self.summary.status = "resumed"
            for p, (at, end) in bounds.items():
                self.summary.partitions[p] = {"end": end, "resumed_from": at}
            log.info("replay %s: resuming, %d raw records left", self.name, _remaining(bounds))
            return bounds
        bounds = resolve(reader, self.spec)
        checkpoint.save_plan(bounds)
        for p, (start, end) in bounds.items():
            self.summary.partitions[p] = {"start": start, "end": end}
        return bounds

    def _ensure_topics(self) -> None:
        """The target and dead-letter topics, created like the normalized and dead-letter topics if missing."""
        as_configured = self.settings.model_copy(update={"normalized_topic": self.to_topic, "dlq_topic": self.dlq_topic})
        wanted = [topic for topic in wanted_topics(as_configured) if topic.topic in (self.to_topic, self.dlq_topic)]
        for created in create_missing(as_configured, wanted):
            log.info("created topic %s", created)

    def _replay(self, reader: TopicReader, checkpoint: Checkpoint, bounds: Bounds, normalize: RecordNormalizer) -> None:
        records_of = reader.range(bounds)
        producer = DurableProducer(self._producer_config)
        progress = Progress(self.name, _remaining(bounds), self.progress_stream, self.progress_interval)
        committed = {p: start for p, (start, _end) in bounds.items()}
        first_read: float | None = None
        try:
            while not self._stopping and not records_of.finished:
                records = records_of.batch(self.settings.normalizer_batch_size)
                if records and first_read is None:
                    first_read = time.monotonic()
                counts: dict[str, Counts] = {}
                for message in records:
                    self._process(producer, normalize, message, counts)
                failed = producer.flush()
                if failed is not None:
                    log.warning("replay %s: delivery failed (%s): reading the batch again", self.name, failed)
                    records_of.rewind(first_offsets(records))
                    time.sleep(RETRY_BACKOFF_SECONDS)
                    continue
                done = {tp.partition: tp.offset for tp in next_offsets(records)}
                # A partition read to its end is committed at its end (past any offsets without a record).
                done.update({p: bounds[p][1] for p in records_of.reached if committed[p] < bounds[p][1]})
                if done:
                    try:
                        checkpoint.commit_progress(done)
                        committed.update(done)
                    except KafkaException as error:
                        # Everything is acknowledged downstream; the batch is replayed again on resume, not lost.
                        log.warning("replay %s: progress commit failed: %s", self.name, error)
                self.summary.add(counts)
                progress.update(_sum(counts))
                if first_read is not None:
                    self.summary.busy_seconds = time.monotonic() - first_read
        finally:
            progress.close()
            producer.close()

    def _process(self, producer: DurableProducer, normalize: RecordNormalizer, message: Message, counts: dict[str, Counts]) -> None:
        esp = record_esp(message)
        tally = counts.setdefault(esp, Counts())
        tally.read += 1
        if self.esps is not None and esp not in self.esps:
            tally.skipped += 1
            return
        normalized = normalize(message)
        failure = write_outcome(producer.produce, message, normalized, self.to_topic, self.dlq_topic)
        if failure is None:
            tally.events += len(normalized.records)
            return
        stage, error = failure
        log.debug("replay %s: dead-lettered %d@%d at %s: %s", self.name, message.partition(), message.offset(), stage, error)
        tally.dead_letters += 1


def run(replay: Replay) -> Summary:
    """Run ``replay`` with Ctrl-C and SIGTERM stopping it after the batch in hand."""
    previous = {sig: signals.signal(sig, replay.stop) for sig in (signals.SIGINT, signals.SIGTERM)}
    try:
        return replay.run()
    finally:
        for sig, handler in previous.items():
            signals.signal(sig, handler)


def format_summary(summary: Summary) -> str:
    """The summary as a table, per ESP."""
    total = summary.total
    head = {
        "finished": f"replay {summary.name}: finished",
        "interrupted": f"replay {summary.name}: interrupted; run it again to resume",
        "already finished": f"replay {summary.name}: already finished; --restart to run it again",
    }.get(summary.status, f"replay {summary.name}: {summary.status}")
    lines = [
        head,
        f"{summary.source} -> {summary.target} (dead letters to {summary.dlq_topic}) in {summary.seconds:.1f}s",
    ]
    rows = [("ESP", "raw records", "events", "dead letters", "skipped")]
    for esp, counts in sorted(summary.esps.items()):
        rows.append((esp or "(none)", str(counts.read), str(counts.events), str(counts.dead_letters), str(counts.skipped)))
    rows.append(("total", str(total.read), str(total.events), str(total.dead_letters), str(total.skipped)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if number == 0 or number == len(rows) - 2:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _remaining(bounds: Bounds) -> int:
    return sum(max(0, end - start) for start, end in bounds.values())


def _sum(counts: dict[str, Counts]) -> Counts:
    total = Counts()
    for each in counts.values():
        total.add(each)
    return total


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    """The terminal's width, from ``stream`` itself: stdout may be a pipe while stderr is the terminal."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


__all__ = ["Replay", "ReplayError", "RangeSpec", "RangeError", "Summary", "Counts", "run", "format_summary", "default_name"]
