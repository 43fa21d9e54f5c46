"""One raw record in, the records to produce for it out: the code path of the service, replays and redrives.

Either events (each with its provenance, its key and its Avro bytes) or a
dead letter: the stage that failed and why. ``write_outcome`` produces either
through the producer it is given.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Message

from espstream import __version__
from espstream.schemas import Provenance, TrackingEvent, raw
from espstream.schemas.avro import EventSerializer

from .core import normalize
from .errors import MalformedRecord
from .request import DEFAULT_OPTIONS, NormalizeOptions

# What librdkafka counts beside key and value against message.max.bytes, generously.
RECORD_FRAMING_BYTES = 1024


class EncodeError(Exception):
    """An event could not be encoded for the normalized topic."""


def event_key(event: TrackingEvent) -> bytes | None:
    """All events of one message on one partition, in order."""
    key = event.message_id or event.recipient
    return key.encode() if key else None


@dataclass(slots=True)
class Normalized:
    """What one raw record becomes: ``events`` with their ``records`` (key, value), or a failure."""

    events: list[TrackingEvent] = field(default_factory=list)
    records: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    webhook: raw.RawWebhook | None = None
    stage: str | None = None  # normalize | encode, when it failed
    error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


class RecordNormalizer:
    """Raw record -> ``Normalized``, with the provenance of ``message`` on every event."""

    def __init__(self, serialize: EventSerializer, max_record_bytes: int, options: NormalizeOptions = DEFAULT_OPTIONS):
        self.serialize = serialize
        self.max_record_bytes = max_record_bytes
        self.options = options

    def __call__(self, message: Message) -> Normalized:
        try:
            webhook = raw.RawWebhook.from_record(message.value(), message.headers())
        except ValueError as error:  # written by something other than the gateway
            return Normalized(stage="normalize", error=MalformedRecord(f"raw record headers: {error}"))
        try:
            events = normalize(webhook.esp, webhook.body, webhook.content_type, webhook.http_headers, self.options)
        except Exception as error:  # any failure is this record's: it becomes a dead letter
            return Normalized(stage="normalize", error=error)
        try:
            records = self._encode(message, webhook, events)
        except Exception as error:
            return Normalized(events=events, webhook=webhook, stage="encode", error=error)
        return Normalized(events=events, records=records, webhook=webhook)

    def _encode(self, message: Message, webhook: raw.RawWebhook, events: list[TrackingEvent]) -> list[tuple[bytes | None, bytes]]:
        encoded = []
        for index, event in enumerate(events):
            event.provenance = Provenance(
                esp=webhook.esp,
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                index=index,
                received_at=webhook.received_at,
                request_id=webhook.request_id,
                normalizer_version=__version__,
            )
            value = self.serialize(event)
            key = event_key(event)
            size = len(value) + len(key or b"") + RECORD_FRAMING_BYTES
            if size > self.max_record_bytes:
                raise EncodeError(f"event {index} encodes to {size} bytes, over the {self.max_record_bytes}-byte limit")
            encoded.append((key, value))
        return encoded


def dead_letter_headers(message: Message, stage: str, error: BaseException, attempts: int | None = None) -> raw.Headers:
    """A normalizer dead letter's headers: the raw record's, then the failed stage, this version, the attempts
    (a redriven letter's), why."""
    extra = [(raw.DLQ_STAGE, stage.encode()), (raw.DLQ_NORMALIZER_VERSION, __version__.encode())]
    if attempts is not None:
        extra.append((raw.DLQ_ATTEMPTS, str(attempts).encode()))
    return raw.dead_letter_headers(message, error, extra)


def write_outcome(
    produce: Callable[..., Any],
    message: Message,
    normalized: Normalized,
    events_topic: str,
    dlq_topic: str,
    attempts: int | None = None,
) -> tuple[str, BaseException] | None:
    """Produce a raw record's outcome: its events to ``events_topic``, else its dead letter of ``message`` to ``dlq_topic``.

    ``produce(topic, value, key[, headers])``. None when the events went out;
    else the stage that failed and its error. An event the client refuses before
    sending (e.g. over its size limit) fails the record at stage ``produce``: the
    dead letter is then its outcome, whatever events went out before.
    """
    if normalized.error is None:
        try:
            for key, value in normalized.records:
                produce(events_topic, value, key)
            return None
        except KafkaException as error:
            stage, failure = "produce", error
    else:
        stage, failure = normalized.stage or "normalize", normalized.error
    produce(dlq_topic, message.value(), message.key(), dead_letter_headers(message, stage, failure, attempts))
    return stage, failure
