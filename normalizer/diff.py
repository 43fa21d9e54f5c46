"""What a replay would change: the current normalizer's events against those already written.

``espstream replay --diff`` writes nothing, neither to Kafka nor to the schema
registry, and commits nothing. For a range of the raw topic it normalizes every
record with ``RecordNormalizer`` (encoding and decoding Avro locally, so each
event is compared as a consumer would decode it) and looks up what the
normalized topic holds for the same raw record: events are matched by their
provenance (raw topic, partition, offset, index); when a raw record was
normalized several times, the latest written wins. Fields are compared as
``TrackingEvent`` fields; provenance is the match, not a difference (its
normalizer version and receive time are expected to differ).

What was written for each raw record comes from plumbing.outcomes, the index
``espstream audit`` uses too. The normalized topic is not read from its
beginning: events are written after their raw record, so reading starts at the
range's first raw timestamp (less a margin for clocks) and ends at the topic's
end when the diff starts. Dead letters are looked up the same way on the
dead-letter topic, to tell records that now fail or stop failing. The range's
events already written are held in memory while the raw records are compared:
diff ranges of a size that fits (a day, an ESP), not all history at once.
"""

import dataclasses
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.outcomes import Outcomes
from espstream.plumbing.reader import Bounds, NoSuchTopic, TopicReader
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EventDeserializer, avro_body, decode_body, registry_unreachable

from .ranges import RangeSpec, record_esp, resolve
from .records import RecordNormalizer
from .replay import ReplayError
from .settings import NormalizerSettings

log = logging.getLogger("espstream.replay.diff")

# Events are written after their raw record; this covers clocks of different machines.
CLOCK_MARGIN_MS = 10 * 60 * 1000
EXAMPLES = 3
# The fields a consumer sees, provenance aside (it is what events are matched by).
COMPARED_FIELDS = tuple(f.name for f in dataclasses.fields(TrackingEvent) if f.name != "provenance")


class LocalCodec:
    """Avro in Confluent framing without a registry (schema id 0): the bytes' size and content, nothing registered."""

    FRAMING = b"\0\0\0\0\0"

    def __call__(self, event: TrackingEvent) -> bytes:
        return self.FRAMING + avro_body(event)

    def decode(self, value: bytes) -> TrackingEvent:
        return decode_body(value[len(self.FRAMING):])



@dataclass
class FieldDiff:
    changed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EspDiff:
    raw_records: int = 0
    events_before: int = 0
    events_now: int = 0
    unchanged: int = 0
    changed: int = 0
    appeared: int = 0
    disappeared: int = 0
    fields: dict[str, FieldDiff] = field(default_factory=dict)
    appeared_examples: list[dict[str, Any]] = field(default_factory=list)
    disappeared_examples: list[dict[str, Any]] = field(default_factory=list)
    now_dead_lettered: int = 0
    now_dead_lettered_examples: list[dict[str, Any]] = field(default_factory=list)
    no_longer_dead_lettered: int = 0
    no_longer_dead_lettered_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.changed or self.appeared or self.disappeared or self.now_dead_lettered or self.no_longer_dead_lettered)


@dataclass
class DiffReport:
    source: str
    target: str
    dlq_topic: str
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)
    esps: dict[str, EspDiff] = field(default_factory=dict)
    skipped: int = 0  # raw records of ESPs left out
    undecodable: int = 0  # records of the target topic in the window that are not events

    @property
    def raw_records(self) -> int:
        return sum(esp.raw_records for esp in self.esps.values())

    @property
    def differs(self) -> bool:
        return any(esp.differs for esp in self.esps.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "dlq_topic": self.dlq_topic,
            "partitions": {str(p): {"start": s, "end": e} for p, (s, e) in sorted(self.partitions.items())},
            "raw_records": self.raw_records,
            "skipped": self.skipped,
            "undecodable": self.undecodable,
            "differs": self.differs,
            "esps": {name: dataclasses.asdict(esp) for name, esp in sorted(self.esps.items())},
        }


class Diff:
    def __init__(
        self,
        spec: RangeSpec,
        *,
        settings: NormalizerSettings | None = None,
        esps: Collection[str] | None = None,
        to_topic: str | None = None,
        dlq_topic: str | None = None,
        examples: int = EXAMPLES,
    ):
        self.settings = settings = settings or NormalizerSettings()
        self.spec = spec
        self.esps = frozenset(esps) if esps else None
        self.raw_topic = settings.raw_topic
        self.report = DiffReport(settings.raw_topic, to_topic or settings.normalized_topic, dlq_topic or settings.dlq_topic)
        self.examples = examples
        self.codec = LocalCodec()
        self.normalize = RecordNormalizer(self.codec, settings.max_record_bytes, settings.normalize_options)  # type: ignore[arg-type]
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))

    def run(self) -> DiffReport:
        # assign() only, nothing committed, under a fresh group id (the reader's).
        with TopicReader(self.settings.kafka(), self.raw_topic) as reader:
            bounds = resolve(reader, self.spec)
            self.report.partitions = dict(bounds)
            first = self._first_timestamp(reader, bounds)
            if first is None:
                return self.report
            outcomes = self._outcomes(bounds, first - CLOCK_MARGIN_MS)
            for message in reader.read(bounds):
                esp = record_esp(message)
                if self.esps is not None and esp not in self.esps:
                    self.report.skipped += 1
                    continue
                self._compare_record(message, esp, outcomes)
        return self.report

    def _first_timestamp(self, reader: TopicReader, bounds: Bounds) -> int | None:
        firsts = [reader.record_at(p, start, end) for p, (start, end) in bounds.items()]
        stamps = [message.timestamp()[1] for message in firsts if message is not None]
        return min(stamps) if stamps else None

    def _outcomes(self, bounds: Bounds, since: int) -> Outcomes:
        """What the target and dead-letter topics hold for the range's raw records (a missing topic: nothing)."""
        outcomes = Outcomes(self.settings.kafka(), self.raw_topic, lambda p, o: _within(bounds, p, o), self.decode, keep_events=True)
        for read, topic in ((outcomes.read_events, self.report.target), (outcomes.read_dead_letters, self.report.dlq_topic)):
            try:
                read(topic, since)
            except NoSuchTopic:
                pass
            except Exception as error:
                if registry_unreachable(error):
                    raise ReplayError(f"schema registry unreachable: {error}") from error
                raise
        self.report.undecodable = outcomes.undecodable
        return outcomes

    def _compare_record(self, message: Message, esp: str, outcomes: Outcomes) -> None:
        before = outcomes.get((message.partition(), message.offset()))
        old = before.latest_events() if before is not None else {}
        diff = self.report.esps.setdefault(esp, EspDiff())
        diff.raw_records += 1
        where = f"{message.partition()}:{message.offset()}"
        normalized = self.normalize(message)
        new = {} if normalized.failed else {i: self.codec.decode(value) for i, (_key, value) in enumerate(normalized.records)}
        was_dead = before is not None and before.letters > 0 and not old
        if normalized.failed and not was_dead:
            diff.now_dead_lettered += 1
            self._example(diff.now_dead_lettered_examples, {"raw": where, "stage": normalized.stage, "error": f"{type(normalized.error).__name__}: {normalized.error}"})
        elif was_dead and not normalized.failed:
            diff.no_longer_dead_lettered += 1
            self._example(diff.no_longer_dead_lettered_examples, {"raw": where, "was": before.reason, "events": len(new)})  # type: ignore[union-attr]
        diff.events_before += len(old)
        diff.events_now += len(new)
        for index in sorted(old.keys() | new.keys()):
            if index not in old:
                diff.appeared += 1
                self._example(diff.appeared_examples, _summary(where, index, new[index]))
            elif index not in new:
                diff.disappeared += 1
                self._example(diff.disappeared_examples, _summary(where, index, old[index]))
            else:
                self._compare_event(diff, where, index, old[index], new[index])

    def _compare_event(self, diff: EspDiff, where: str, index: int, old: TrackingEvent, new: TrackingEvent) -> None:
        changed = [name for name in COMPARED_FIELDS if getattr(old, name) != getattr(new, name)]
        if not changed:
            diff.unchanged += 1
            return
        diff.changed += 1
        for name in changed:
            field_diff = diff.fields.setdefault(name, FieldDiff())
            field_diff.changed += 1
            self._example(
                field_diff.examples,
                {"raw": where, "index": index, "dedupe_id": new.dedupe_id, "old": _json(getattr(old, name)), "new": _json(getattr(new, name))},
            )

    def _example(self, examples: list[dict[str, Any]], example: dict[str, Any]) -> None:
        if len(examples) < self.examples:
            examples.append(example)


def format_report(report: DiffReport) -> str:
    """The report for people: per ESP, the counts, each changed field with examples."""
    spans = ", ".join(f"{p}:{s}-{e}" for p, (s, e) in sorted(report.partitions.items()))
    lines = [
        f"diff of {report.source} [{spans}] ({report.raw_records} raw records"
        + (f", {report.skipped} of other ESPs skipped" if report.skipped else "")
        + f") against {report.target} and {report.dlq_topic}"
    ]
    for name, esp in sorted(report.esps.items()):
        lines.append(
            f"{name or '(no esp)'}: {esp.raw_records} raw records, {esp.events_before} events before, {esp.events_now} now:"
            f" {esp.unchanged} unchanged, {esp.changed} changed, {esp.appeared} appeared, {esp.disappeared} disappeared"
        )
        for field_name, field_diff in sorted(esp.fields.items()):
            lines.append(f"  {field_name}: changed in {field_diff.changed} events, e.g.")
            lines.extend(
                f"    raw {ex['raw']} #{ex['index']}: {_value(ex['old'])} -> {_value(ex['new'])}" for ex in field_diff.examples
            )
        for label, count, examples in (
            ("appeared", esp.appeared, esp.appeared_examples),
            ("disappeared", esp.disappeared, esp.disappeared_examples),
        ):
            if count:
                lines.append(f"  {label}: {count} events, e.g.")
                lines.extend(f"    raw {ex['raw']} #{ex['index']}: {ex['event_type']} {ex['dedupe_id']}" for ex in examples)
        if esp.now_dead_lettered:
            lines.append(f"  now dead-lettered: {esp.now_dead_lettered} raw records, e.g.")
            lines.extend(f"    raw {ex['raw']}: {ex['stage']}: {_short(ex['error'])}" for ex in esp.now_dead_lettered_examples)
        if esp.no_longer_dead_lettered:
            lines.append(f"  no longer dead-lettered: {esp.no_longer_dead_lettered} raw records, e.g.")
            lines.extend(f"    raw {ex['raw']}: {ex['events']} events, was {_short(ex['was'])}" for ex in esp.no_longer_dead_lettered_examples)
    if not report.differs:
        lines.append("no differences")
    return "\n".join(lines)


def _within(bounds: Bounds, partition: int, offset: int) -> bool:
    span = bounds.get(partition)
    return span is not None and span[0] <= offset < span[1]


def _summary(where: str, index: int, event: TrackingEvent) -> dict[str, Any]:
    return {"raw": where, "index": index, "event_type": event.event_type, "dedupe_id": event.dedupe_id}


def _json(value: Any) -> Any:
    """A field's value as JSON would show it."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _value(value: Any) -> str:
    return _short(json.dumps(value, ensure_ascii=False))


