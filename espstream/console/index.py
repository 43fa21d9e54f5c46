"""What the lookup and the rates pages read: every event of the normalized topic, indexed in memory.

A lookup by message id or recipient must not read the topic per request (100k
events take seconds to decode), so a background thread reads the topic once
from its first records, then every ``interval`` seconds the records written
since, with plumbing.reader's bounded reads. Each event is kept as a small
``Indexed`` (what a timeline shows) under its position; message ids and
recipients point at positions; per-minute counts per ESP feed the rate charts.
"""

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaException, Message

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.reader import NoSuchTopic, TopicReader
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import registry_unreachable

log = logging.getLogger("espstream.console")

BATCH = 2000
UNKNOWN = "unknown"


@dataclass(slots=True, frozen=True)
class Indexed:
    """One event as a timeline shows it, at its position on the normalized topic."""

    partition: int
    offset: int
    esp: str
    esp_name: str
    event_type: str
    timestamp: datetime | None
    received_at: datetime | None
    message_id: str | None
    recipient: str | None
    event_id: str | None
    reject_reason: str | None
    description: str | None
    mta_response: str | None
    click_url: str | None
    tags: tuple[str, ...]

    @classmethod
    def of(cls, message: Message, event: TrackingEvent) -> "Indexed":
        provenance = event.provenance
        received = provenance.received_at if provenance is not None else None
        if received is None:  # the record's time: when it was normalized
            received = datetime.fromtimestamp(message.timestamp()[1] / 1000, UTC)
        return cls(
            message.partition(), message.offset(), (provenance.esp if provenance else "") or event.esp_name, event.esp_name,
            event.event_type, event.timestamp, received, event.message_id, event.recipient, event.event_id,
            event.reject_reason, event.description, event.mta_response, event.click_url, tuple(event.tags),
        )

    @property
    def when(self) -> datetime | None:
        """When it happened, as the ESP says; else when the webhook was received."""
        return self.timestamp or self.received_at


def timeline_order(event: Indexed) -> tuple[datetime, int, int]:
    """When it happened, then where it is: a timeline's order."""
    return (event.when or datetime.min.replace(tzinfo=UTC), event.partition, event.offset)


class EventIndex:
    """The normalized topic's events by position, message id and recipient, kept up to date by a thread."""

    def __init__(self, settings: CommonSettings, decode: Callable[[bytes, str], TrackingEvent], interval: float = 1.0,
                 after_refresh: Callable[[], Any] | None = None):
        self.settings = settings
        self.topic = settings.normalized_topic
        self.decode = decode
        self.interval = interval
        self.after_refresh = after_refresh
        self._lock = threading.Lock()
        self._events: dict[tuple[int, int], Indexed] = {}
        self._by_message: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        self._by_recipient: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        # (minute as epoch seconds, ESP, unknown event type?) -> events received in that minute
        self._minutes: Counter[tuple[int, str, bool]] = Counter()
        self._next: dict[int, int] = {}  # partition -> the first offset not read yet
        self.undecodable = 0
        self.caught_up_at: datetime | None = None  # the end of the last complete read
        self.problem: str | None = None  # why the last read failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-index", daemon=True)

    def start(self) -> "EventIndex":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def __len__(self) -> int:
        return len(self._events)

    def _run(self) -> None:
        reader = None
        while not self._stop.is_set():
            try:
                reader = reader or TopicReader(self.settings.kafka(), self.topic, timeout=30.0)
                added = self.refresh(reader)
                self.problem = None
            except NoSuchTopic:
                added, self.problem = 0, f"{self.topic} does not exist yet"
            except KafkaException as error:
                added, self.problem = 0, f"reading {self.topic}: {error}"
                log.warning("console index: %s", self.problem)
            except Exception as error:
                if not registry_unreachable(error):
                    raise
                added, self.problem = 0, f"the schema registry is unreachable: {error}"
            if self.after_refresh is not None:
                try:
                    self.after_refresh()
                except Exception:
                    log.exception("console index: refreshing the status view failed")
            if not added:
                self._stop.wait(self.interval)
        if reader is not None:
            reader.close()

    def refresh(self, reader: TopicReader) -> int:
        """Index what was written since the last refresh, up to each partition's end now; how many events."""
        bounds = reader.bounds(offsets=self._next)
        added = 0
        records = reader.range(bounds)
        while not records.finished and not self._stop.is_set():
            added += self._add(records.batch(BATCH))
        if records.finished:
            with self._lock:
                for partition, (_start, end) in bounds.items():
                    self._next[partition] = max(self._next.get(partition, 0), end)
            self.caught_up_at = datetime.now(UTC)
        return added

    def _add(self, messages: list[Message]) -> int:
        decoded = []
        for message in messages:
            value = message.value()
            if value is None or message.offset() < self._next.get(message.partition(), 0):
                continue
            try:
                decoded.append(Indexed.of(message, self.decode(value, message.topic())))
            except Exception as error:
                if registry_unreachable(error):
                    raise
                self.undecodable += 1
        with self._lock:
            for event in decoded:
                position = (event.partition, event.offset)
                self._events[position] = event
                if event.message_id:
                    self._by_message[event.message_id].append(position)
                if event.recipient:
                    self._by_recipient[event.recipient.lower()].append(position)
                if event.received_at is not None:
                    minute = int(event.received_at.timestamp()) // 60 * 60
                    self._minutes[(minute, event.esp, event.event_type == UNKNOWN)] += 1
                self._next[event.partition] = event.offset + 1
        return len(decoded)

    def lookup(self, term: str) -> list[Indexed]:
        """The events of message id ``term`` and of recipient ``term`` (any case), oldest first."""
        term = term.strip()
        with self._lock:
            positions = set(self._by_message.get(term, ())) | set(self._by_recipient.get(term.lower(), ()))
            events = [self._events[position] for position in positions]
        return sorted(events, key=timeline_order)

    def newest(self, per_partition: int) -> list[Indexed] | None:
        """The events among the last ``per_partition`` offsets of each partition, as of the last refresh;
        None until the index has read the topic to its end once."""
        if self.caught_up_at is None:
            return None
        with self._lock:
            return [
                event
                for partition, end in self._next.items()
                for offset in range(end - 1, max(end - per_partition, 0) - 1, -1)
                if (event := self._events.get((partition, offset))) is not None
            ]

    def at(self, partition: int, offset: int) -> Indexed | None:
        return self._events.get((partition, offset))

    def minutes(self, since: datetime) -> dict[tuple[int, str, bool], int]:
        """Per (minute, ESP, unknown?) the events received from ``since`` on."""
        first = int(since.timestamp()) // 60 * 60
        with self._lock:
            return {key: count for key, count in self._minutes.items() if key[0] >= first}

    def state(self) -> dict[str, Any]:
        """What the pages say about the index: how many events, as of when, and any problem."""
        return {
            "topic": self.topic,
            "events": len(self._events),
            "undecodable": self.undecodable,
            "caught_up_at": self.caught_up_at.isoformat() if self.caught_up_at else None,
            "problem": self.problem,
        }


def since_hours(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)
