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

The normalized topic is not read from its beginning: events are written after
their raw record, so reading starts at the range's first raw timestamp (less a
margin for clocks) and ends at the topic's end when the diff starts. Dead
letters are looked up the same way on the dead-letter topic, by their
``dlq-source-*`` headers, to tell records that now fail or stop failing. The
range's events already written are held in memory while the raw records are
compared: diff ranges of a size that fits (a day, an ESP), not all history at once.
"""

import dataclasses
import json
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.schemas import TrackingEvent, raw
from espstream.schemas.avro import EventDeserializer, avro_body, decode_body, registry_unreachable

from .ranges import (
    RANGE_CONSUMER_CONFIG,
    READ_TIMEOUT_SECONDS,
    Bounds,
    RangeError,
    RangeReader,
    RangeSpec,
    TimeProbe,
    end_offsets,
    record_esp,
    resolve,
    topic_partitions,
)
from .records import RecordNormalizer
from .replay import ReplayError
from .settings import NormalizerSettings

log = logging.getLogger("espstream.replay.diff")

# Events are written after their raw record; this covers clocks of different machines.
CLOCK_MARGIN_MS = 10 * 60 * 1000
EXAMPLES = 3
# The fields a consumer sees, provenance aside (it is what events are matched by).
COMPARED_FIELDS = tuple(f.name for f in dataclasses.fields(TrackingEvent) if f.name != "provenance")
BATCH = 1000


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

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "dlq_topic": self.dlq_topic,
            "partitions": {str(p): {"start": s, "end": e} for p, (s, e) in sorted(self.partitions.items())},
            "raw_records": self.raw_records,
            "skipped": self.skipped,
            "undecodable": self.undecodable,
            "differs": any(esp.differs for esp in self.esps.values()),
            "esps": {name: dataclasses.asdict(esp) for name, esp in sorted(self.esps.items())},
        }


Position = tuple[int, int]  # raw partition, offset


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
        self.normalize = RecordNormalizer(self.codec, settings.max_record_bytes)  # type: ignore[arg-type]
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))

    def run(self) -> DiffReport:
        consumer = Consumer(
            self.settings.kafka(
                **{
                    # assign() only, nothing committed; a fresh id keeps even a stray commit off real groups.
                    "group.id": f"espstream-diff-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    **RANGE_CONSUMER_CONFIG,
                }
            )
        )
        try:
            bounds = resolve(consumer, self.raw_topic, self.spec)
            self.report.partitions = dict(bounds)
            first = self._first_timestamp(consumer, bounds)
            if first is None:
                return self.report
            since = first - CLOCK_MARGIN_MS
            before = self._events_before(consumer, bounds, since)
            dead_before = self._dead_letters_before(consumer, bounds, since)
            self._compare(consumer, bounds, before, dead_before)
            return self.report
        finally:
            consumer.close()

    def _first_timestamp(self, consumer: Consumer, bounds: Bounds) -> int | None:
        probe = TimeProbe(consumer, self.raw_topic)
        stamps = []
        for p, (start, end) in bounds.items():
            if start < end:
                offset, stamp = probe.record_at(p, start, end)
                if offset < end:
                    stamps.append(stamp)
        return min(stamps) if stamps else None

    def _window(self, consumer: Consumer, topic: str, since: int) -> RangeReader | None:
        """A reader of ``topic`` from ``since`` to its end now; None if there is no such topic."""
        try:
            partitions = topic_partitions(consumer, topic)
        except RangeError:
            return None
        ends = end_offsets(consumer, topic, partitions)
        probe = TimeProbe(consumer, topic)
        bounds = {}
        for p in partitions:
            low, _high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=READ_TIMEOUT_SECONDS)
            bounds[p] = (probe.offset_for_time(p, since, low, ends[p]), ends[p])
        return RangeReader(consumer, topic, bounds)

    def _events_before(self, consumer: Consumer, bounds: Bounds, since: int) -> dict[Position, dict[int, TrackingEvent]]:
        """Per raw record in range, the events already written for it, by index (the latest written of each)."""
        reader = self._window(consumer, self.report.target, since)
        found: dict[Position, dict[int, tuple[tuple[int, int], TrackingEvent]]] = {}
        while reader is not None and not reader.finished:
            for message in reader.batch(BATCH):
                event = self._decoded(message)
                origin = event.provenance if event is not None else None
                if origin is None or origin.topic != self.raw_topic or not _within(bounds, origin.partition, origin.offset):
                    continue
                if self.esps is not None and origin.esp not in self.esps:
                    continue
                written = (message.timestamp()[1], message.offset())
                events = found.setdefault((origin.partition, origin.offset), {})
                if origin.index not in events or events[origin.index][0] <= written:
                    events[origin.index] = (written, event)
        return {position: {i: event for i, (_w, event) in events.items()} for position, events in found.items()}

    def _dead_letters_before(self, consumer: Consumer, bounds: Bounds, since: int) -> dict[Position, str]:
        """Per raw record in range that was dead-lettered, the latest letter's reason."""
        reader = self._window(consumer, self.report.dlq_topic, since)
        letters: dict[Position, str] = {}
        while reader is not None and not reader.finished:
            for message in reader.batch(BATCH):
                source = raw.dead_letter_source(message.headers())
                if source is None:
                    continue
                topic, partition, offset = source
                headers = {name: (value or b"").decode("utf-8", "replace") for name, value in message.headers() or ()}
                if topic == self.raw_topic and _within(bounds, partition, offset):
                    letters[(partition, offset)] = (
                        f"{headers.get(raw.DLQ_ERROR_CLASS, '')}: {headers.get(raw.DLQ_ERROR_MESSAGE, '')}"
                    )
        return letters

    def _compare(
        self, consumer: Consumer, bounds: Bounds, before: dict[Position, dict[int, TrackingEvent]], dead_before: dict[Position, str]
    ) -> None:
        reader = RangeReader(consumer, self.raw_topic, bounds)
        while not reader.finished:
            for message in reader.batch(BATCH):
                esp = record_esp(message)
                if self.esps is not None and esp not in self.esps:
                    self.report.skipped += 1
                    continue
                self._compare_record(message, esp, before.pop((message.partition(), message.offset()), {}), dead_before)

    def _compare_record(self, message: Message, esp: str, old: dict[int, TrackingEvent], dead_before: dict[Position, str]) -> None:
        diff = self.report.esps.setdefault(esp, EspDiff())
        diff.raw_records += 1
        where = f"{message.partition()}:{message.offset()}"
        normalized = self.normalize(message)
        new = {} if normalized.failed else {i: self.codec.decode(value) for i, (_key, value) in enumerate(normalized.records)}
        was_dead = (message.partition(), message.offset()) in dead_before and not old
        if normalized.failed and not was_dead:
            diff.now_dead_lettered += 1
            self._example(diff.now_dead_lettered_examples, {"raw": where, "stage": normalized.stage, "error": f"{type(normalized.error).__name__}: {normalized.error}"})
        elif was_dead and not normalized.failed:
            diff.no_longer_dead_lettered += 1
            self._example(diff.no_longer_dead_lettered_examples, {"raw": where, "was": dead_before[(message.partition(), message.offset())], "events": len(new)})
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

    def _decoded(self, message: Message) -> TrackingEvent | None:
        try:
            return self.decode(message.value(), message.topic())
        except Exception as error:
            if registry_unreachable(error):
                raise ReplayError(f"schema registry unreachable: {error}") from error
            self.report.undecodable += 1
            return None


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
    if not any(esp.differs for esp in report.esps.values()):
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


