"""Discarding dead letters that will never succeed: done as a redrive marks a letter done, with the reason kept.

A discarded letter is committed on the topic's redrive group, as a redriven one
is, so ``dlq list`` and a redrive no longer see it. Commits mark a partition's
prefix: pending letters before it that are not discarded are first copied,
unchanged, to the end of the dead-letter topic (they stay pending), as a redrive
does with the letters it leaves pending.

The reason stays on ``<dead-letter topic>.discarded`` (kept forever, like the
dead letters): a copy of the letter with ``dlq-discarded-reason``, ``-by``
(the operator), ``-at`` and ``-from`` (its ``PARTITION:OFFSET`` on the
dead-letter topic) added. ``dlq list --all`` and ``dlq show`` read it to show
which letters were discarded and why.
"""

import getpass
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message

from .config import CommonSettings
from .deadletters import DeadLetterReader, DeadLetterWriter, header_text
from .reader import NoSuchTopic, TopicReader
from .topics import create_missing, retained_topic

DISCARDED_REASON = "dlq-discarded-reason"
DISCARDED_BY = "dlq-discarded-by"
DISCARDED_AT = "dlq-discarded-at"
DISCARDED_FROM = "dlq-discarded-from"

Position = tuple[int, int]


def discard_topic(dlq_topic: str) -> str:
    return f"{dlq_topic}.discarded"


class NotPending(LookupError):
    """A position asked for holds no pending letter: never written, redriven or discarded already."""


@dataclass(slots=True, frozen=True)
class Discarded:
    """Why and by whom a letter was discarded."""

    reason: str
    by: str
    at: str

    def as_json(self) -> dict[str, str]:
        return {"discarded-reason": self.reason, "discarded-by": self.by, "discarded-at": self.at}


@dataclass(slots=True, frozen=True)
class Outcome:
    partition: int
    offset: int
    result: str  # "discarded", or "left pending" for a letter copied to the end
    note: str


def discard(
    settings: CommonSettings, topic: str, group: str, positions: list[Position], reason: str, by: str | None = None
) -> Iterator[Outcome]:
    """Discard the pending letters at ``positions`` of ``topic`` (redrive group ``group``). NotPending before writing anything."""
    wanted = set(positions)
    last = {}
    for partition, offset in wanted:
        last[partition] = max(offset, last.get(partition, -1))
    with DeadLetterReader(settings.kafka(), topic, group) as reader:
        # Per partition, the pending letters up to the last one to discard.
        letters = [letter for letter in reader.letters() if letter.offset() <= last.get(letter.partition(), -1)]
        missing = wanted - {(letter.partition(), letter.offset()) for letter in letters}
        if missing:
            raise NotPending(", ".join(f"{p}:{o}" for p, o in sorted(missing)))
        target = discard_topic(topic)
        create_missing(settings, [retained_topic(settings, target)])
        stamp = Discarded(reason, by or getpass.getuser(), datetime.now(UTC).isoformat(timespec="seconds"))
        writer = DeadLetterWriter(settings.producer(**{"message.max.bytes": settings.max_dead_letter_bytes}))
        try:
            for letter in letters:
                position = (letter.partition(), letter.offset())
                if position in wanted:
                    yield _discard(writer, target, letter, stamp)
                else:
                    yield _move(writer, topic, letter)
                if position[1] == last[position[0]]:
                    reader.commit(letter)
        finally:
            writer.close()


def _write(writer: DeadLetterWriter, topic: str, letter: Message, headers: list[tuple[str, bytes | None]]) -> Message:
    delivered = writer.write(topic, letter.value(), letter.key(), headers)
    assert delivered is not None  # the writer only gives up when asked to
    return delivered


def _discard(writer: DeadLetterWriter, target: str, letter: Message, stamp: Discarded) -> Outcome:
    headers = [
        *(letter.headers() or []),
        (DISCARDED_REASON, stamp.reason.encode()),
        (DISCARDED_BY, stamp.by.encode()),
        (DISCARDED_AT, stamp.at.encode()),
        (DISCARDED_FROM, f"{letter.partition()}:{letter.offset()}".encode()),
    ]
    _write(writer, target, letter, headers)
    return Outcome(letter.partition(), letter.offset(), "discarded", stamp.reason)


def _move(writer: DeadLetterWriter, topic: str, letter: Message) -> Outcome:
    """A pending letter before a discarded one: copied, headers and all, to the end (still pending)."""
    delivered = _write(writer, topic, letter, letter.headers() or [])
    return Outcome(letter.partition(), letter.offset(), "left pending", f"moved to {delivered.partition()}:{delivered.offset()}")


def discarded(consumer_config: dict[str, Any], dlq_topic: str) -> dict[Position, Discarded]:
    """The letters of ``dlq_topic`` discarded so far, by position, and why."""
    found: dict[Position, Discarded] = {}
    try:
        with TopicReader(consumer_config, discard_topic(dlq_topic)) as reader:
            for record in reader.read(reader.bounds()):
                partition, _, offset = (header_text(record, DISCARDED_FROM) or "").partition(":")
                if partition.isdigit() and offset.isdigit():
                    found[(int(partition), int(offset))] = Discarded(
                        header_text(record, DISCARDED_REASON) or "",
                        header_text(record, DISCARDED_BY) or "?",
                        header_text(record, DISCARDED_AT) or "?",
                    )
    except NoSuchTopic as missing:
        if missing.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise
    return found
