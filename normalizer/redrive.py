"""Redriving the normalizer's dead letters after a fix: each pending letter is normalized again.

A letter holds the raw record it was made of (its value and headers) plus
``dlq-*`` headers. It goes through ``RecordNormalizer``, the service's own code
path, as that raw record at its original position (``dlq-source-*``): its events
are the ones a normal run would have produced, with the same keys, dedupe ids and
provenance.

What becomes of a letter:
- normalized: its events were acknowledged on the normalized topic;
- dead-lettered again: it failed again and was written back to the end of the
  topic with ``dlq-attempts`` increased and the new stage and error;
- left pending: another ESP's than asked for, or already tried ``max_attempts``
  times; it is not tried.

A tried letter is committed on ``<normalizer group>.redrive`` once its events or
its new letter are acknowledged. Commits mark a partition's prefix, so a letter
left pending before a tried one is first copied, unchanged, to the end of the
topic (it stays pending, at a new offset); one with no tried letter after it
keeps its place. The letters read are those pending when the run starts, so it
never reads again the letters it writes.
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.deadletters import (
    DLQ_PREFIX,
    DeadLetterReader,
    DeadLetterWriter,
    first_line,
    header_text,
    letter_attempts,
    redrive_group,
)
from espstream.schemas import raw
from espstream.schemas.avro import EventSerializer
from espstream.schemas.esps import esp_slug

from .records import RecordNormalizer, write_outcome
from .settings import NormalizerSettings

log = logging.getLogger("espstream.normalizer.redrive")

NORMALIZED = "normalized"
FAILED_AGAIN = "dead-lettered again"
LEFT_PENDING = "left pending"


class SourceRecord:
    """A dead letter seen as the raw record it was made of: what ``RecordNormalizer`` reads of a message.

    Its value and headers without ``dlq-*``, at the raw record's position
    (``dlq-source-*``; the letter's own when a letter lacks them).
    """

    __slots__ = ("_letter", "_headers", "_topic", "_partition", "_offset")

    def __init__(self, letter: Message):
        self._letter = letter
        self._headers = [(name, value) for name, value in letter.headers() or () if not name.startswith(DLQ_PREFIX)]
        source = raw.dead_letter_source(letter.headers())
        # Not a letter the normalizer wrote: at least the position it is at.
        self._topic, self._partition, self._offset = source or (letter.topic(), letter.partition(), letter.offset())

    def value(self) -> bytes | None:
        return self._letter.value()

    def key(self) -> bytes | None:
        return self._letter.key()

    def headers(self) -> raw.Headers:
        return self._headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def position(self) -> str:
        return f"{self._topic}[{self._partition}]@{self._offset}"


@dataclass(slots=True, frozen=True)
class Outcome:
    partition: int  # the letter's position on the dead-letter topic
    offset: int
    esp: str
    result: str  # NORMALIZED, FAILED_AGAIN or LEFT_PENDING
    attempts: int  # normalizations of the raw record so far, the service's included
    source: str  # the raw record: topic[partition]@offset
    dedupe_ids: list[str] = field(default_factory=list)  # of the events produced
    stage: str | None = None  # why it failed (again), when it did
    error_class: str | None = None
    error: str | None = None
    note: str | None = None  # why it was left pending, and where it is now


def letter_fields(letter: Message) -> dict[str, str]:
    """What a normalizer letter is listed by: its ESP, the stage that failed, the error class."""
    return {
        "esp": header_text(letter, raw.ESP) or "?",
        "stage": header_text(letter, raw.DLQ_STAGE) or "?",
        "error_class": header_text(letter, raw.DLQ_ERROR_CLASS) or "?",
    }


class NormalizerRedrive:
    def __init__(
        self,
        settings: NormalizerSettings | None = None,
        esps: Collection[str] | None = None,
        max_attempts: int | None = None,
    ):
        """``esps`` (slugs or names) limits the redrive to those ESPs' letters; ``max_attempts``
        leaves letters tried that often pending."""
        self.settings = settings = settings or NormalizerSettings()
        self.topic = settings.dlq_topic
        self.esps = frozenset(esp_slug(name) for name in esps) if esps else None
        self.max_attempts = max_attempts
        self.serialize = EventSerializer(SchemaRegistryClient(settings.registry()), settings.normalized_topic)
        self.normalize_record = RecordNormalizer(self.serialize, settings.max_record_bytes, settings.normalize_options)
        # Waits for each record's acknowledgement: events and letters alike.
        self.writer = DeadLetterWriter(settings.producer(**{"message.max.bytes": settings.max_dead_letter_bytes}))

    def run(self) -> Iterator[Outcome]:
        """Redrive every pending letter, yielding what became of each once that is durable."""
        # A registry outage is not the letters' fault: fail here rather than count it as an attempt.
        self.serialize.register()
        # Per partition, the letters left pending since the last tried one.
        held: dict[int, list[tuple[Message, str]]] = {}
        try:
            with DeadLetterReader(self.settings.kafka(), self.topic, redrive_group(self.settings.normalizer_group)) as reader:
                for letter in reader.letters():
                    partition = letter.partition()
                    reason = self._left_pending_because(letter)
                    if reason is not None:
                        held.setdefault(partition, []).append((letter, reason))
                        continue
                    # The commit below covers the held letters: copy them to the end first.
                    moved = [self._move(each, why) for each, why in held.pop(partition, [])]
                    outcome = self._redrive(letter)
                    reader.commit(letter)
                    yield from moved
                    yield outcome
            for letters in held.values():
                for letter, reason in letters:
                    yield self._outcome(letter, LEFT_PENDING, letter_attempts(letter), note=reason)
        finally:
            self.writer.close()

    def _left_pending_because(self, letter: Message) -> str | None:
        esp = header_text(letter, raw.ESP) or ""
        if self.esps is not None and esp not in self.esps:
            return "another ESP"
        attempts = letter_attempts(letter)
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return f"tried {attempts} times, the most allowed ({self.max_attempts})"
        return None

    def _redrive(self, letter: Message) -> Outcome:
        source = SourceRecord(letter)
        attempts = letter_attempts(letter) + 1
        normalized = self.normalize_record(source)  # type: ignore[arg-type]  # reads a Message's accessors only
        # The letter's own headers go with a new letter: its raw record's, and its dlq-source-* kept by the builder.
        failure = write_outcome(self._write, letter, normalized, self.settings.normalized_topic, self.topic, attempts)
        if failure is None:
            return self._outcome(letter, NORMALIZED, attempts, source, dedupe_ids=[e.dedupe_id for e in normalized.events])
        stage, error = failure
        log.warning(
            "dead letter %d@%d (%s) failed again at %s: %s: %s",
            letter.partition(), letter.offset(), source.position(), stage, type(error).__name__, error,
        )
        return self._outcome(
            letter, FAILED_AGAIN, attempts, source, stage=stage, error_class=type(error).__name__, error=first_line(str(error))
        )

    def _move(self, letter: Message, reason: str) -> Outcome:
        """Copy a letter left pending, headers and all, to the end of the topic."""
        delivered = self._write(self.topic, letter.value(), letter.key(), letter.headers() or [])
        return self._outcome(
            letter, LEFT_PENDING, letter_attempts(letter), note=f"{reason}; moved to {delivered.partition()}:{delivered.offset()}"
        )

    def _write(self, topic: str, value: bytes | None, key: bytes | None, headers: raw.Headers | None = None) -> Message:
        delivered = self.writer.write(topic, value, key, headers)
        assert delivered is not None  # the writer only gives up when asked to
        return delivered

    def _outcome(
        self, letter: Message, result: str, attempts: int, source: SourceRecord | None = None, **details: object
    ) -> Outcome:
        if result == LEFT_PENDING:  # the failure it was written for
            details = {
                "stage": header_text(letter, raw.DLQ_STAGE),
                "error_class": header_text(letter, raw.DLQ_ERROR_CLASS),
                "error": first_line(header_text(letter, raw.DLQ_ERROR_MESSAGE)),
                **details,
            }
        return Outcome(
            partition=letter.partition(),
            offset=letter.offset(),
            esp=header_text(letter, raw.ESP) or "",
            result=result,
            attempts=attempts,
            source=(source or SourceRecord(letter)).position(),
            **details,  # type: ignore[arg-type]
        )

def redrive(
    settings: NormalizerSettings | None = None, esps: Collection[str] | None = None, max_attempts: int | None = None
) -> Iterator[Outcome]:
    return NormalizerRedrive(settings, esps, max_attempts).run()


class Tally:
    """Outcomes counted per ESP, for a closing summary."""

    def __init__(self) -> None:
        self.results: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.events: Counter[str] = Counter()

    def add(self, outcome: Outcome) -> None:
        self.results[outcome.esp or "?"][outcome.result] += 1
        self.events[outcome.esp or "?"] += len(outcome.dedupe_ids)

    @property
    def failed_again(self) -> int:
        return sum(results[FAILED_AGAIN] for results in self.results.values())

    def lines(self) -> list[str]:
        """One line per ESP: ``postmark: 2 normalized (3 events), 1 dead-lettered again, 1 left pending``."""
        if not self.results:
            return ["no pending dead letters"]
        lines = []
        for esp, results in sorted(self.results.items()):
            parts = []
            for result in (NORMALIZED, FAILED_AGAIN, LEFT_PENDING):
                if results[result]:
                    events = f" ({self.events[esp]} event{'' if self.events[esp] == 1 else 's'})" if result == NORMALIZED else ""
                    parts.append(f"{results[result]} {result}{events}")
            lines.append(f"{esp}: {', '.join(parts)}")
        return lines
