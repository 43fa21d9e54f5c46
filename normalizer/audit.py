"""``espstream audit``: did every raw webhook of a time range get its outcome?

The outcome of a raw record is one of: its events on the normalized topic
(found by their provenance: raw topic, partition, offset; counted by index),
its dead letter on the dead-letter topic (found by its ``dlq-source-*``
headers), or nothing by design: a webhook that normalizes to no event (an SNS
subscription confirmation, an empty batch). Every raw record of the range is
normalized again here, with the normalizer's own code: that says how many
events it must have (all of indexes 0..n-1, so losing its last events is
seen), and it counts as empty only when that yields zero events without an
error. normalize() is pure, so this holds for events written by this version
of the normalizer; events written by another version (an audit after an
upgrade) may rightly number otherwise, and are only checked for a gap between
index 0 and the highest found.

A record dead-lettered and later normalized by a redrive has both; it counts
as one with events (and as redriven). Repeats are counted, not missing: events
seen more than once for the same record and index, and a record dead-lettered
more than once (letters a redrive wrote back aside).

A raw record with none of these is MISSING. A missing record at or after the
normalizer group's committed offset is not lost (yet): the normalizer has not
finished it. One before it is a broken guarantee: the offset was committed
without the outcome being written.

Outcomes are read from the range's start (less a margin for the clocks of the
gateway and the normalizer) to the end of each partition, since a record can be
normalized any time after it was received; partitions are read to their end as
plumbing.reader decides it, and outcomes are found by plumbing.outcomes, the
index ``replay --diff`` uses too.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream import __version__
from espstream.plumbing.outcomes import Outcomes, RecordOutcome
from espstream.plumbing.reader import NoSuchTopic, TopicReader
from espstream.plumbing.times import format_time, millis
from espstream.schemas import raw
from espstream.schemas.avro import EventDeserializer, registry_unreachable

from .core import normalize
from .request import NormalizeOptions
from .settings import NormalizerSettings

# How far a normalizer's clock may lag the gateway's: outcomes are read from this long before the range.
CLOCK_SKEW = timedelta(minutes=5)
EXAMPLES = 5

RawId = tuple[str, int, int]  # topic, partition, offset


class AuditError(Exception):
    """The audit could not be made (a topic is missing, a partition could not be read)."""


@dataclass(slots=True)
class Counts:
    """One ESP's (or every ESP's) tally."""

    raw_records: int = 0
    with_events: int = 0
    # Of those with events, the ones written by another normalizer version: checked for gaps, not for their number.
    checked_by_index_only: int = 0
    events: int = 0
    dead_lettered: int = 0
    # Dead-lettered, then normalized by `espstream dlq redrive`: counted with events, not dead-lettered.
    redriven: int = 0
    empty_by_design: int = 0
    missing: int = 0
    # Of the missing, those before the normalizer group's committed offset: lost, not late.
    missing_committed: int = 0
    duplicate_events: int = 0
    duplicate_dead_letters: int = 0

    def add(self, other: "Counts") -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class Missing:
    """A raw record without an outcome, as an operator would look it up."""

    partition: int
    offset: int
    esp: str
    request_id: str | None
    received_at: str | None
    committed: bool  # the normalizer group committed past it
    expected: str  # what normalizing it gives now, and what was found


@dataclass(slots=True)
class AuditReport:
    raw_topic: str
    normalized_topic: str
    dlq_topic: str
    start: str | None
    end: str | None
    totals: Counts = field(default_factory=Counts)
    esps: dict[str, Counts] = field(default_factory=dict)
    examples: list[Missing] = field(default_factory=list)
    # Records on the normalized topic without a readable provenance.
    unreadable_events: int = 0

    @property
    def ok(self) -> bool:
        return self.totals.missing == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(slots=True)
class _RawRecord:
    esp: str | None
    request_id: str | None
    received_at: str | None
    expected: int | str  # how many events normalizing it gives now, or why it fails


def audit(
    settings: NormalizerSettings,
    start: datetime | None = None,
    end: datetime | None = None,
    examples: int = EXAMPLES,
) -> AuditReport:
    """Reconcile the raw records received in [start, end) with their outcomes."""
    report = AuditReport(
        settings.raw_topic, settings.normalized_topic, settings.dlq_topic,
        start.isoformat() if start else None, end.isoformat() if end else None,
    )
    try:
        records = _raw_records(settings, start, end)
        outcomes = _outcomes(settings, records.keys(), millis(start - CLOCK_SKEW) if start else None)
    except NoSuchTopic as error:
        raise AuditError(str(error.args[0].str())) from error
    except KafkaException as error:
        raise AuditError(str(error)) from error
    report.unreadable_events = outcomes.undecodable + outcomes.without_provenance
    committed = _committed(settings, {partition for _, partition, _ in records})
    for key, record in sorted(records.items()):
        counts = report.esps.setdefault(record.esp or "", Counts())
        _tally(key, record, outcomes.get(key[1:]), committed, counts, report, examples)
    for counts in report.esps.values():
        report.totals.add(counts)
    return report


def _tally(
    key: RawId,
    record: _RawRecord,
    found: RecordOutcome | None,
    committed: dict[int, int],
    counts: Counts,
    report: AuditReport,
    examples: int,
) -> None:
    letters = found.dead_letters if found else 0
    counts.raw_records += 1
    counts.duplicate_dead_letters += max(letters - 1, 0)
    indexes = found.indexes() if found else None
    expected = record.expected
    if indexes:
        counts.events += len(indexes)
        counts.duplicate_events += sum(indexes.values()) - len(indexes)
    complete = _complete(found, expected)
    if complete:
        counts.with_events += 1
        counts.checked_by_index_only += complete == _BY_INDEX
        counts.redriven += bool(letters)
    elif letters:
        # The dead letter is the outcome, even if some of the record's events went out before the failure.
        counts.dead_lettered += 1
    else:
        if not indexes and expected == 0:
            counts.empty_by_design += 1
            return
        _, partition, offset = key
        lost = offset < committed.get(partition, -1)
        counts.missing += 1
        counts.missing_committed += lost
        if len(report.examples) < examples:
            partial = f"; found only indexes {sorted(indexes)}" if indexes else ""
            description = f"normalizes to {expected} event(s)" if isinstance(expected, int) else str(expected)
            report.examples.append(
                Missing(partition, offset, record.esp or "", record.request_id, record.received_at, lost, description + partial)
            )


_BY_COUNT = "by count"
_BY_INDEX = "by index"


def _complete(found: RecordOutcome | None, expected: int | str) -> str | None:
    """How the record's events were found complete (None: they were not).

    Events of this normalizer version must hold every index below the number
    normalizing the record gives now. Another version may rightly give another
    number: its events need only have no index missing between 0 and the
    highest found. Either suffices, so a replay under way does not hide the
    complete outcome an earlier version wrote.
    """
    if not found or not found.versions:
        return None
    ours = found.versions.get(__version__)
    if ours and isinstance(expected, int) and all(index in ours for index in range(expected)):
        return _BY_COUNT
    others = [indexes for version, indexes in found.versions.items() if version != __version__]
    if any(len(indexes) == max(indexes) + 1 for indexes in others):
        return _BY_INDEX
    return None


def _normalized_count(message: Message, options: NormalizeOptions) -> int | str:
    try:
        webhook = raw.RawWebhook.from_record(message.value(), message.headers())
        return len(normalize(webhook.esp, webhook.body, webhook.content_type, webhook.http_headers, options))
    except Exception as error:  # what the normalizer would dead-letter
        return f"fails to normalize ({type(error).__name__}: {error}), no dead letter"


def _raw_records(settings: NormalizerSettings, start: datetime | None, end: datetime | None) -> dict[RawId, _RawRecord]:
    """The raw records whose timestamp is in [start, end).

    Reading starts at the first record a little before ``start``; the range itself
    is decided by each record's own timestamp, since records are appended only
    about in time order (gateways' clocks differ).
    """
    topic = settings.raw_topic
    first = millis(start) if start else None
    last = millis(end) if end else None
    records = {}
    with TopicReader(settings.kafka(), topic) as reader:
        bounds = reader.bounds(since=millis(start - CLOCK_SKEW) if start else None)
        # Records are appended about in time order: one past the range by more than the skew ends it.
        until = last + _millis_of(CLOCK_SKEW) if last is not None else None
        for message in reader.read(bounds, until):
            timestamp = message.timestamp()[1]
            if (first is not None and timestamp < first) or (last is not None and timestamp >= last):
                continue
            known = {name: value for name, value in message.headers() or () if name in _RAW_HEADERS and value is not None}
            records[(topic, message.partition(), message.offset())] = _RawRecord(
                *(known[name].decode("utf-8", "replace") if name in known else None for name in (raw.ESP, raw.REQUEST_ID, raw.RECEIVED_AT)),
                expected=_normalized_count(message, settings.normalize_options),
            )
    return records


def _millis_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


_RAW_HEADERS = frozenset({raw.ESP, raw.REQUEST_ID, raw.RECEIVED_AT})


def _outcomes(settings: NormalizerSettings, wanted: Any, since: int | None) -> Outcomes:
    """The events and dead letters written for the raw records of ``wanted``."""
    positions = {(partition, offset) for _topic, partition, offset in wanted}
    outcomes = Outcomes(
        settings.kafka(), settings.raw_topic, lambda p, o: (p, o) in positions, EventDeserializer(SchemaRegistryClient(settings.registry()))
    )
    try:
        outcomes.read_events(settings.normalized_topic, since)
    except Exception as error:
        if registry_unreachable(error):  # every event would look unreadable: no audit at all
            raise AuditError(f"schema registry unreachable: {error}") from error
        raise
    outcomes.read_dead_letters(settings.dlq_topic, since)
    return outcomes


def _committed(settings: NormalizerSettings, partitions: set[int]) -> dict[int, int]:
    """The normalizer group's committed offset per raw partition (absent: nothing committed)."""
    if not partitions:
        return {}
    consumer = Consumer(settings.kafka(**{"group.id": settings.normalizer_group, "enable.auto.commit": False}))
    try:
        found = consumer.committed([TopicPartition(settings.raw_topic, p) for p in sorted(partitions)], timeout=15)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


HEADINGS = ("raw", "with events", "events", "dead-lettered", "redriven", "empty", "MISSING", "dup events", "dup letters")
_WIDTHS = [max(len(heading), 7) + 2 for heading in HEADINGS]


def render(report: AuditReport) -> str:
    """The report as an operator reads it."""
    span = f"{format_time(report.start) if report.start else 'the beginning'} .. {format_time(report.end) if report.end else 'now'}"
    lines = [
        f"raw topic {report.raw_topic}, {span}; outcomes on {report.normalized_topic} and {report.dlq_topic}",
        "",
        f"{'esp':<14}" + "".join(f"{heading:>{width}}" for heading, width in zip(HEADINGS, _WIDTHS)),
    ]
    for esp, counts in sorted(report.esps.items()):
        lines.append(_row(esp or "(none)", counts))
    lines.append(_row("total", report.totals))
    if report.totals.missing:
        lines += ["", f"missing (first {len(report.examples)}), partition:offset:"]
        for example in report.examples:
            state = "committed by the normalizer: LOST" if example.committed else "not committed yet: the normalizer has not finished it"
            lines.append(
                f"  {example.partition}:{example.offset}  request {example.request_id}  {example.esp}  "
                f"received {format_time(example.received_at) if example.received_at else None}: {example.expected}  ({state})"
            )
    if report.totals.checked_by_index_only:
        lines.append(
            f"\n{report.totals.checked_by_index_only} record(s) with events checked by index only: other normalizer version "
            f"(not {__version__}), so only checked for no index missing between 0 and the highest found"
        )
    if report.unreadable_events:
        lines.append(f"\n{report.unreadable_events} record(s) on {report.normalized_topic} without a readable provenance (ignored)")
    lines.append("")
    if report.ok:
        lines.append(f"OK: all {report.totals.raw_records} raw records have their outcome")
    else:
        lines.append(
            f"MISSING: {report.totals.missing} of {report.totals.raw_records} raw records have no outcome "
            f"({report.totals.missing_committed} of them committed by the normalizer)"
        )
    return "\n".join(lines)


def _row(name: str, counts: Counts) -> str:
    values = (
        counts.raw_records, counts.with_events, counts.events, counts.dead_lettered, counts.redriven, counts.empty_by_design,
        counts.missing, counts.duplicate_events, counts.duplicate_dead_letters,
    )
    return f"{name:<14}" + "".join(f"{value:>{width}}" for value, width in zip(values, _WIDTHS))
