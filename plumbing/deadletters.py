"""Dead-letter topics: writing a letter and waiting for its acknowledgement, reading the pending ones back.

A dead-letter topic is read by a redrive group (``<owner group>.redrive``) that
commits each letter once it was dealt with, so the next redrive or listing starts
after it. Reading is plumbing.reader's (assign(), not a group subscription: one
reader, no join wait); writing is plumbing.producer's.

Listing groups letters by what they share (ESP, where and why they failed) into a
table or JSON; showing prints one letter, headers and body, as it is stored.
"""

import base64
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaError, Message, TopicPartition

from espstream.schemas import raw

from .producer import DurableProducer
from .reader import NoSuchTopic, TopicReader
from .times import format_time

DLQ_PREFIX = "dlq-"
# Characters of an error message shown beside a group of letters.
EXAMPLE_CHARS = 80


def redrive_group(group: str) -> str:
    """The consumer group whose offsets on ``group``'s dead-letter topic mark what was redriven."""
    return f"{group}.redrive"


def header_text(message: Message, name: str) -> str | None:
    """The last header ``name`` of ``message`` as text (a redriven letter's newest value wins)."""
    found = None
    for key, value in message.headers() or ():
        if key == name and value is not None:
            found = value.decode("utf-8", "replace")
    return found


class DeadLetterWriter(DurableProducer):
    """Writes dead letters (``write()``) and returns once the broker acknowledged them; safe to share between threads."""

    def __init__(self, producer_config: dict[str, Any]):
        super().__init__(producer_config, each_acknowledged=True)


class DeadLetterReader:
    """The letters of ``topic`` after ``group``'s committed offsets (all of them with ``from_beginning``).

    The letters pending when reading starts: those written meanwhile (a redrive's own) are not read.
    """

    def __init__(self, consumer_config: dict[str, Any], topic: str, group: str, from_beginning: bool = False):
        self.topic = topic
        self.reader = TopicReader({**consumer_config, "group.id": group}, topic)
        self._from_beginning = from_beginning

    def __enter__(self) -> "DeadLetterReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()

    def letters(self) -> Iterator[Message]:
        """Each pending letter, every partition's in order."""
        try:
            partitions = self.reader.partitions()
        except NoSuchTopic as missing:
            if missing.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return  # nothing was ever dead-lettered
            raise
        committed = {}
        if not self._from_beginning:
            positions = [TopicPartition(self.topic, p) for p in partitions]
            committed = {tp.partition: tp.offset for tp in self.reader.consumer.committed(positions, timeout=30.0) if tp.offset >= 0}
        yield from self.reader.read(self.reader.bounds(partitions, offsets=committed))

    def commit(self, letter: Message) -> None:
        """Mark ``letter`` and every letter before it in its partition as dealt with."""
        self.reader.consumer.commit(
            offsets=[TopicPartition(letter.topic(), letter.partition(), letter.offset() + 1)], asynchronous=False
        )


def summary(letter: Message, esp: str | None = None) -> dict[str, Any]:
    """A dead letter's position, its ESP (``esp``, else its ``esp`` header) and its ``dlq-*`` headers, for listing."""
    key = letter.key()
    esp = esp or header_text(letter, raw.ESP)
    return {
        "partition": letter.partition(),
        "offset": letter.offset(),
        "key": key.decode("utf-8", "replace") if key is not None else None,
        **({"esp": esp} if esp is not None else {}),
        **{
            name.removeprefix(DLQ_PREFIX): header_text(letter, name)
            for name, _ in letter.headers() or ()
            if name.startswith(DLQ_PREFIX)
        },
    }


def letter_attempts(letter: Message) -> int:
    """How often a letter's record was tried: ``dlq-attempts``, else once (the failure that wrote it)."""
    text = header_text(letter, raw.DLQ_ATTEMPTS)
    try:
        return int(text) if text else 1
    except ValueError:
        return 1


def first_line(text: str | None, limit: int = EXAMPLE_CHARS) -> str:
    """The first line of ``text``, trimmed to ``limit`` characters."""
    line = (text or "").strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(slots=True)
class LetterGroup:
    """Letters that share ``fields`` (such as ESP, stage and error class)."""

    fields: dict[str, str]
    letters: int = 0
    attempts: Counter[int] = field(default_factory=Counter)
    # Per partition, the first and last offset of the group's letters.
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)
    example: str = ""  # the error message of the letter first in (partition, offset) order, its first line
    _example_at: tuple[int, int] | None = None

    def add(self, letter: Message) -> None:
        position = (letter.partition(), letter.offset())
        if self._example_at is None or position < self._example_at:
            self.example, self._example_at = first_line(header_text(letter, raw.DLQ_ERROR_MESSAGE)), position
        self.letters += 1
        self.attempts[letter_attempts(letter)] += 1
        first, last = self.offsets.get(letter.partition(), (letter.offset(), letter.offset()))
        self.offsets[letter.partition()] = (min(first, letter.offset()), max(last, letter.offset()))

    def offsets_text(self) -> str:
        """``PARTITION:FIRST-LAST`` per partition, as ``dlq show`` takes a position."""
        return " ".join(
            f"{p}:{first}" if first == last else f"{p}:{first}-{last}" for p, (first, last) in sorted(self.offsets.items())
        )

    def attempts_text(self) -> str:
        low, high = min(self.attempts), max(self.attempts)
        return str(low) if low == high else f"{low}-{high}"

    def as_json(self) -> dict[str, Any]:
        return {
            **self.fields,
            "letters": self.letters,
            "attempts": {str(n): count for n, count in sorted(self.attempts.items())},
            "offsets": {str(p): [first, last] for p, (first, last) in sorted(self.offsets.items())},
            "example": self.example,
        }


def group_letters(letters: Iterable[Message], fields: Callable[[Message], dict[str, str]]) -> list[LetterGroup]:
    """``letters`` grouped by ``fields(letter)``, the largest group first."""
    groups: dict[tuple[tuple[str, str], ...], LetterGroup] = {}
    for letter in letters:
        shared = fields(letter)
        groups.setdefault(tuple(shared.items()), LetterGroup(shared)).add(letter)
    return sorted(groups.values(), key=lambda group: (-group.letters, tuple(group.fields.values())))


def groups_table(groups: list[LetterGroup]) -> str:
    """The groups as an aligned text table, one row per group; its last column is an example error."""
    if not groups:
        return ""
    names = list(groups[0].fields)
    header = [name.replace("_", " ").upper() for name in names] + ["LETTERS", "ATTEMPTS", "OFFSETS", "FIRST ERROR"]
    rows = [
        [group.fields[name] for name in names]
        + [str(group.letters), group.attempts_text(), group.offsets_text(), group.example]
        for group in groups
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


class NoSuchLetter(LookupError):
    """No record at the position asked for."""


def read_letter(consumer_config: dict[str, Any], topic: str, partition: int, offset: int, timeout: float = 30.0) -> Message:
    """The record at ``partition``:``offset`` of ``topic``; NoSuchLetter if there is none."""
    # This id never commits and never joins.
    with TopicReader({**consumer_config, "group.id": "espstream-dlq-show"}, topic, timeout) as reader:
        try:
            partitions = reader.partitions()
        except NoSuchTopic:
            partitions = []
        if partition not in partitions:
            raise NoSuchLetter(f"{topic} has no partition {partition}")
        letter = reader.record_at(partition, offset, reader.ends([partition])[partition])
    # A later record instead: this one was removed (compaction, retention).
    if letter is None or letter.offset() != offset:
        raise NoSuchLetter(f"no record at {partition}:{offset} on {topic}")
    return letter


def body_text(body: bytes) -> str | None:
    """``body`` as text if it is UTF-8 without control characters (tabs and line breaks aside), else None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if all(char.isprintable() or char in "\t\n\r" for char in text) else None


def render_letter(letter: Message, decoded: str | None = None) -> str:
    """A letter for reading: position, key, every header as text, then its body.

    The body is printed as text when it is text, else base64 with a notice; ``decoded``
    (e.g. an Avro event as JSON) is printed instead of base64 when given.
    """
    key = letter.key()
    lines = [
        f"topic: {letter.topic()}",
        f"partition: {letter.partition()}",
        f"offset: {letter.offset()}",
        f"timestamp: {_timestamp(letter)}",
        f"key: {key.decode('utf-8', 'backslashreplace') if key is not None else '(none)'}",
        f"headers ({len(letter.headers() or [])}):",
        *(f"  {name}: {_header_value(value)}" for name, value in letter.headers() or ()),
    ]
    body = letter.value()
    if body is None:
        lines.append("body: (none)")
        return "\n".join(lines) + "\n"
    text = body_text(body)
    if text is not None:
        lines += [f"body ({len(body)} bytes, UTF-8 text):", text]
    elif decoded is not None:
        lines += [f"body ({len(body)} bytes, not text; decoded):", decoded]
    else:
        lines += [
            f"body ({len(body)} bytes): not UTF-8 text, shown as base64 (--raw writes the bytes themselves):",
            base64.b64encode(body).decode(),
        ]
    return "\n".join(lines) + "\n"


def _header_value(value: bytes | None) -> str:
    return value.decode("utf-8", "backslashreplace") if value is not None else "(no value)"


def _timestamp(letter: Message) -> str:
    kind, millis = letter.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE:
        return "(none)"
    return format_time(millis)


def listing_json(topic: str, groups: list[LetterGroup], pending_only: bool) -> dict[str, Any]:
    """``dlq list --json``: the topic, how many letters, and each group's fields, counts and offsets."""
    return {
        "topic": topic,
        "pending_only": pending_only,
        "letters": sum(group.letters for group in groups),
        "groups": [group.as_json() for group in groups],
    }


def listing_text(topic: str, groups: list[LetterGroup], pending_only: bool) -> str:
    """``dlq list``: the groups' table, then the total."""
    total = sum(group.letters for group in groups)
    which = "pending dead letter" if pending_only else "dead letter"
    return f"{groups_table(groups)}{total} {which}{'' if total == 1 else 's'} on {topic}\n"


def event_esp(letter: Message, decode: Callable[[bytes, str], Any]) -> str | None:
    """The ESP slug of the Avro event a receiver group's letter holds; None if it does not decode."""
    event = _decoded_event(letter, decode)
    if event is None:
        return None
    if event.provenance is not None and event.provenance.esp:
        return str(event.provenance.esp)
    return str(event.esp_name) if event.esp_name else None


def group_letter_fields(decode: Callable[[bytes, str], Any]) -> Callable[[Message], dict[str, str]]:
    """What a receiver group's letter is listed by: its event's ESP, the receiver, the error class."""

    def fields(letter: Message) -> dict[str, str]:
        return {
            "esp": event_esp(letter, decode) or "?",
            "receiver": header_text(letter, raw.DLQ_RECEIVER) or "?",
            "error_class": header_text(letter, raw.DLQ_ERROR_CLASS) or "?",
        }

    return fields


def event_text(letter: Message, decode: Callable[[bytes, str], Any]) -> str | None:
    """The Avro event a receiver group's letter holds, as indented JSON; None if it does not decode."""
    import dataclasses
    import json

    event = _decoded_event(letter, decode)
    if event is None:
        return None
    return json.dumps(dataclasses.asdict(event), indent=2, ensure_ascii=False, default=str)


def _decoded_event(letter: Message, decode: Callable[[bytes, str], Any]) -> Any:
    from espstream.schemas.avro import registry_unreachable

    value = letter.value()
    if value is None:
        return None
    try:
        return decode(value, header_text(letter, raw.DLQ_SOURCE_TOPIC) or letter.topic())
    except Exception as error:
        if registry_unreachable(error):
            raise
        return None
