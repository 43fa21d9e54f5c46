"""``espstream tail``: the normalized topic's events as JSON lines, like kcat would print them.

Reads by ``assign()``, with no consumer group: nothing is committed, no group
rebalances, and any number of tails run beside the real consumers. By default
it starts at the end of each partition (events that arrive from now on);
``from_beginning`` reads the whole topic, ``start`` from a time on. It runs
until stopped (Ctrl-C, SIGTERM), until its output is closed (``espstream tail |
head``), until ``count`` events were printed, or (``exit_at_end``) to the end
of the topic as it was at the start: the bounded read of plumbing.reader.
"""

import dataclasses
import io
import json
import logging
import os
import select
import signal as signals
import stat
import sys
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, TextIO

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.reader import Bounds, NoSuchTopic, TopicReader
from espstream.plumbing.times import format_time, millis
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EVENT_TYPES, EventDeserializer, registry_unreachable
from espstream.schemas.esps import esp_slug

log = logging.getLogger("espstream.tail")

POLL_SECONDS = 0.5
_TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "logappend"}
METADATA_TIMEOUT_SECONDS = 15.0


class TailError(Exception):
    """Tail cannot start or go on: the message says why."""


def event_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise ValueError(f"unknown event type {name!r}: one of {', '.join(sorted(EVENT_TYPES))}")
    return name


class Tail:
    def __init__(
        self,
        settings: CommonSettings,
        *,
        topic: str | None = None,
        esps: Collection[str] | None = None,
        event_types: Collection[str] | None = None,
        from_beginning: bool = False,
        start: datetime | None = None,
        count: int | None = None,
        exit_at_end: bool = False,
        envelope: bool = False,
        out: TextIO = sys.stdout,
    ):
        """``esps`` (slugs or names) and ``event_types`` narrow what is printed; None prints all.

        It starts at the end of each partition, ``from_beginning`` at its first record,
        or at the first record written at ``start`` or later. ``count``: stop after
        printing that many events; ``exit_at_end``: stop at each partition's end as it
        was when the tail started (kcat's ``-e``).

        ``envelope`` prints kcat's ``-J`` shape (topic, partition, offset, tstype, ts,
        headers, key, payload, value_schema_id) instead of the bare event.
        """
        self.settings = settings
        self.topic = topic or settings.normalized_topic
        self.esps = frozenset(esp_slug(name) for name in esps) if esps else None
        self.event_types = frozenset(event_type(name) for name in event_types) if event_types else None
        self.from_beginning = from_beginning
        self.start = start
        self.remaining = count
        self.exit_at_end = exit_at_end
        self.envelope = envelope
        self.out = out
        self._stopping = False
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))

    def stop(self, *_args: object) -> None:
        self._stopping = True

    def run(self) -> None:
        """Print events until stopped, the output is closed, ``count`` were printed or (``exit_at_end``) the end. Raises TailError."""
        with TopicReader(self.settings.kafka(), self.topic, METADATA_TIMEOUT_SECONDS) as reader:
            bounds = self._bounds(reader)
            where = "the beginning" if self.from_beginning else format_time(self.start) if self.start else "the end"
            log.info("tailing %s from %s%s", self.topic, where, " to its end" if self.exit_at_end else "")
            if self.exit_at_end:
                records = reader.range(bounds)
                while not records.finished and self._go_on(records.batch(500, timeout=POLL_SECONDS)):
                    pass
                return
        self._follow(bounds)

    def _follow(self, bounds: Bounds) -> None:
        consumer = Consumer(
            self.settings.kafka(
                **{
                    # assign() joins no group; a fresh id keeps even a stray commit away from real groups.
                    "group.id": f"espstream-tail-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                }
            )
        )
        try:
            consumer.assign([TopicPartition(self.topic, p, start) for p, (start, _end) in bounds.items()])
            while self._go_on(consumer.consume(500, timeout=POLL_SECONDS)):
                pass
        finally:
            consumer.close()

    def _bounds(self, reader: TopicReader) -> Bounds:
        """Where each partition starts (and, for ``exit_at_end``, ends): the beginning, ``start``, or the end now."""
        try:
            if self.from_beginning:
                return reader.bounds()
            if self.start is not None:
                return reader.bounds(since=millis(self.start))
            # Resolved now rather than left to OFFSET_END, so everything after "tailing" is printed.
            return {p: (end, end) for p, end in reader.ends(reader.partitions()).items()}
        except NoSuchTopic:
            raise TailError(f"topic {self.topic!r} does not exist") from None

    def _go_on(self, messages: list[Message]) -> bool:
        """Print the wanted events of ``messages``; False once stopped, the reader went away or ``count`` were printed."""
        if self._stopping or (messages and not self._print(messages)):
            return False
        if _reader_gone(self.out):
            _silence_stdout(self.out)
            return False
        return self.remaining is None or self.remaining > 0

    def _print(self, messages: list[Message]) -> bool:
        """Write the wanted events (no more than ``count`` in all); False once the reader went away."""
        lines = [line for line in map(self._line, messages) if line is not None]
        if self.remaining is not None:
            lines = lines[: self.remaining]
            self.remaining -= len(lines)
        try:
            if lines:
                self.out.write("".join(lines))
                self.out.flush()
        except BrokenPipeError:
            _silence_stdout(self.out)
            return False
        return True

    def _line(self, message: Message) -> str | None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", error)
            return None
        event = self._decode(message)
        if event is None or not self._wanted(event):
            return None
        payload = event_json(event)
        return _json_line(_envelope(message, payload) if self.envelope else payload, self.out)

    def _decode(self, message: Message) -> TrackingEvent | None:
        try:
            event = self.decode(message.value(), message.topic())
        except Exception as error:
            if registry_unreachable(error):
                raise TailError(f"schema registry unreachable: {error}") from error
            log.warning("partition %d offset %d: not an event (%s: %s)",
                        message.partition(), message.offset(), type(error).__name__, error)
            return None
        if event is None:  # a record without value
            log.warning("partition %d offset %d: no value", message.partition(), message.offset())
        return event

    def _wanted(self, event: TrackingEvent) -> bool:
        if self.event_types is not None and event.event_type not in self.event_types:
            return False
        if self.esps is not None:
            slug = event.provenance.esp if event.provenance else _slug_of_name(event.esp_name)
            return slug in self.esps
        return True


def event_json(event: TrackingEvent) -> dict[str, Any]:
    """The event as a JSON object: its fields, ``esp_event`` as JSON rather than text."""
    return dataclasses.asdict(event)


def run(settings: CommonSettings, **options: Any) -> int:
    """``espstream tail``: 0 when stopped or the output closed, 1 on an error."""
    tail = Tail(settings, **options)
    previous = {sig: signals.signal(sig, tail.stop) for sig in (signals.SIGINT, signals.SIGTERM)}
    try:
        tail.run()
    except TailError as error:
        print(f"espstream tail: {error}", file=sys.stderr)
        return 1
    except KafkaException as error:  # the broker went away while reading
        print(f"espstream tail: {error.args[0].str()}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signals.signal(sig, handler)
    return 0


def _envelope(message: Message, payload: dict[str, Any]) -> dict[str, Any]:
    """kcat -J's fields around the payload, in its order (no broker id: the client does not expose it)."""
    envelope: dict[str, Any] = {"topic": message.topic(), "partition": message.partition(), "offset": message.offset()}
    timestamp_type, timestamp_ms = message.timestamp()
    if timestamp_type != TIMESTAMP_NOT_AVAILABLE:
        envelope["tstype"] = _TIMESTAMP_TYPES.get(timestamp_type, "unknown")
        envelope["ts"] = timestamp_ms
    headers = message.headers()
    if headers:
        # kcat's list: name, value, name, value... (a name may repeat).
        envelope["headers"] = [text for name, value in headers for text in (name, _text(value))]
    envelope["key"] = _text(message.key())
    envelope["payload"] = payload
    envelope["value_schema_id"] = int.from_bytes(message.value()[1:5], "big")  # after the Confluent magic byte
    return envelope


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "backslashreplace") if value is not None else None


def _json_line(value: dict[str, Any], out: TextIO) -> str:
    line = json.dumps(value, ensure_ascii=False, default=_json_default)
    try:
        line.encode(out.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        # A terminal that cannot show it, or a lone surrogate (legal in JSON text): escape.
        line = json.dumps(value, default=_json_default)
    return line + "\n"


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _slug_of_name(esp_name: str) -> str | None:
    try:
        return esp_slug(esp_name)
    except ValueError:
        return None


def _reader_gone(out: TextIO) -> bool:
    """The pipe's reader exited (``| head``): noticed without writing, so a quiet topic ends the tail too."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return False
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR (no reader left) and POLLHUP are reported whatever the mask
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_stdout(out: TextIO) -> None:
    """After the reader left: point stdout at /dev/null so the exit flush cannot fail again."""
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
