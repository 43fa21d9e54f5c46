"""Redriving a group's dead letters after a fix: each letter's event goes to the receiver it names.

Only the named receiver is called: its siblings already returned for that event,
and calling them again would repeat their work. A letter of an event that could
not be decoded (receiver ``(decode)``) goes to every wanted receiver, since none
got it. Receivers are called as the runner calls them, retries included, with the
event's position on the normalized topic.

Each letter is committed on the group ``<group>.redrive`` once dealt with: its
receiver returned, or it failed every attempt again and went back to the end of
the dead-letter topic with its attempts added up. A second redrive starts after
the letters the first one dealt with; a run reads the letters pending when it
starts, never the ones it wrote itself.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.deadletters import DeadLetterReader, DeadLetterWriter, header_text
from espstream.schemas import TrackingEvent, raw
from espstream.schemas.avro import EventDeserializer

from .dispatch import AsyncLoop, Dispatcher
from .runner import DECODE, TrackingConsumer, group_dead_letter_headers
from .settings import ConsumerSettings
from .signals import Connection, Signal, tracking

log = logging.getLogger("espstream.consumers.redrive")

DELIVERED = "delivered"
FAILED_AGAIN = "dead-lettered again"


class UnknownReceiver(LookupError):
    """A dead letter names a receiver that none of the loaded modules connected."""


@dataclass(slots=True, frozen=True)
class Outcome:
    partition: int
    offset: int
    receiver: str
    dedupe_id: str | None
    result: str  # DELIVERED or FAILED_AGAIN
    attempts: int  # calls of the receiver for this event so far, over every run


class Redrive:
    def __init__(self, group: str, signal: Signal = tracking, settings: ConsumerSettings | None = None):
        self.group = group
        self.signal = signal
        self.settings = settings = settings or ConsumerSettings()
        self.topic = settings.group_dlq_topic(group)
        self.decode = EventDeserializer(SchemaRegistryClient(settings.registry()))
        self.loop = AsyncLoop()
        self.dispatcher = Dispatcher(signal, settings, TrackingConsumer, self.loop)
        self.writer = DeadLetterWriter(settings.producer(**{"message.max.bytes": settings.max_dead_letter_bytes}))

    def run(self) -> Iterator[Outcome]:
        """Redrive every pending letter, yielding what became of each once it is committed."""
        try:
            with DeadLetterReader(self.settings.kafka(), self.topic, self.settings.group_redrive_group(self.group)) as reader:
                for letter in reader.letters():
                    outcomes = self._redrive(letter)
                    reader.commit(letter)
                    yield from outcomes
        finally:
            self.loop.close()
            self.writer.close()

    def _redrive(self, letter: Message) -> list[Outcome]:
        receiver = header_text(letter, raw.DLQ_RECEIVER) or DECODE
        attempts = int(header_text(letter, raw.DLQ_ATTEMPTS) or 0)
        source_topic = header_text(letter, raw.DLQ_SOURCE_TOPIC) or self.settings.normalized_topic
        try:
            event = self.decode(letter.value(), source_topic)
            if event is None:
                raise ValueError("record has no value")
        except Exception as error:  # still undecodable: back to the end of the topic
            log.warning("dead letter %d@%d still does not decode: %s", letter.partition(), letter.offset(), error)
            self._write_again(letter, receiver, error, attempts + 1)
            return [Outcome(letter.partition(), letter.offset(), receiver, None, FAILED_AGAIN, attempts + 1)]
        connections = self._connections(letter, receiver, event)
        failures = {
            connection.name: error
            for connection, error in self.dispatcher.deliver(event, _kwargs(letter, event, source_topic), connections)
        }
        outcomes = []
        for name in (c.name for c in connections):
            if name in failures:
                total = attempts + self.settings.consumer_max_attempts
                self._write_again(letter, name, failures[name], total)
                outcomes.append(Outcome(letter.partition(), letter.offset(), name, event.dedupe_id, FAILED_AGAIN, total))
            else:
                outcomes.append(Outcome(letter.partition(), letter.offset(), name, event.dedupe_id, DELIVERED, attempts + 1))
        return outcomes

    def _connections(self, letter: Message, receiver: str, event: TrackingEvent) -> list[Connection]:
        """The named receiver's connection; every wanted receiver's for a decode letter."""
        if receiver == DECODE:
            return [c for c in self.signal.connections if c.wants(event)]
        named = [c for c in self.signal.connections if c.name == receiver]
        if not named:
            raise UnknownReceiver(
                f"dead letter {letter.partition()}@{letter.offset()} names receiver {receiver}, "
                "which no loaded module connects: load its module, then redrive again"
            )
        return named

    def _write_again(self, letter: Message, receiver: str, error: Exception, attempts: int) -> None:
        headers = group_dead_letter_headers(letter, self.group, receiver, error, attempts)
        delivered = self.writer.write(self.topic, letter.value(), letter.key(), headers)
        assert delivered is not None  # the writer only gives up when asked to


def _kwargs(letter: Message, event: TrackingEvent, source_topic: str) -> dict[str, object]:
    """The arguments the runner passed: the event's position on the normalized topic."""
    partition, offset = header_text(letter, raw.DLQ_SOURCE_PARTITION), header_text(letter, raw.DLQ_SOURCE_OFFSET)
    return {
        "topic": source_topic,
        "partition": int(partition) if partition is not None else None,
        "offset": int(offset) if offset is not None else None,
        "dedupe_id": event.dedupe_id,
    }


def redrive(group: str, signal: Signal = tracking, settings: ConsumerSettings | None = None) -> Iterator[Outcome]:
    return Redrive(group, signal, settings).run()
