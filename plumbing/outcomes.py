"""What was written for raw records: their events and dead letters, by raw position.

The one answer ``espstream audit`` and ``replay --diff`` share. Events are found
by their provenance (raw topic, partition, offset; index within the record),
dead letters by their ``dlq-source-*`` headers. Both topics are read from a time
(their records are written after the raw record, so a little before its receive
time) to their end now.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from espstream.schemas import TrackingEvent, raw
from espstream.schemas.avro import registry_unreachable

from .reader import TopicReader

Position = tuple[int, int]  # raw partition, offset


@dataclass(slots=True)
class RecordOutcome:
    """What was written for one raw record."""

    # Per normalizer version, how many times each event index was written.
    versions: dict[str, Counter[int]] = field(default_factory=dict)
    # With ``keep_events``: per index, the latest written event, and when (timestamp, offset).
    events: dict[int, tuple[tuple[int, int], TrackingEvent]] = field(default_factory=dict)
    letters: int = 0
    # The normalizer's failure times among its letters (a redrive's letters aside).
    failures: set[bytes] = field(default_factory=set)
    reason: str = ""  # the last letter's error class and message

    def indexes(self) -> Counter[int]:
        """How many times each index was written, whatever version wrote it."""
        found: Counter[int] = Counter()
        for indexes in self.versions.values():
            found.update(indexes)
        return found

    def latest_events(self) -> dict[int, TrackingEvent]:
        return {index: event for index, (_written, event) in self.events.items()}

    @property
    def dead_letters(self) -> int:
        """How many times the normalizer dead-lettered the record.

        A redrive writes letters of its own for the same record: one failing again
        (with ``dlq-attempts``) and one moved unchanged (the same ``dlq-failed-at``).
        Neither is the normalizer dead-lettering the record once more, so letters
        count once per distinct failure time, redrive letters aside.
        """
        return max(len(self.failures), 1) if self.letters else 0


class Outcomes:
    """The outcomes of the raw records of ``raw_topic`` that ``wanted(partition, offset)``."""

    def __init__(
        self,
        consumer_config: dict[str, Any],
        raw_topic: str,
        wanted: Callable[[int, int], bool],
        decode: Callable[[bytes, str], TrackingEvent | None],
        keep_events: bool = False,
    ):
        self.consumer_config = consumer_config
        self.raw_topic = raw_topic
        self.wanted = wanted
        self.decode = decode
        self.keep_events = keep_events
        self.records: dict[Position, RecordOutcome] = {}
        self.undecodable = 0  # records of the events topic that are no event
        self.without_provenance = 0  # events that name no raw record

    def get(self, position: Position) -> RecordOutcome | None:
        return self.records.get(position)

    def read_events(self, topic: str, since: int | None) -> None:
        """Index the events of ``topic`` written from ``since`` (ms; None: the beginning). NoSuchTopic if none."""
        with TopicReader(self.consumer_config, topic) as reader:
            for message in reader.read(reader.bounds(since=since)):
                try:
                    event = self.decode(message.value(), message.topic())
                except Exception as error:
                    if registry_unreachable(error):  # every event would look undecodable
                        raise
                    self.undecodable += 1  # not an event of ours (or not Avro at all): not an outcome
                    continue
                origin = event.provenance if event is not None else None
                if origin is None:
                    self.without_provenance += 1
                    continue
                if origin.topic != self.raw_topic or not self.wanted(origin.partition, origin.offset):
                    continue
                outcome = self.records.setdefault((origin.partition, origin.offset), RecordOutcome())
                outcome.versions.setdefault(origin.normalizer_version or "", Counter())[origin.index] += 1
                if self.keep_events:
                    written = (message.timestamp()[1], message.offset())
                    if origin.index not in outcome.events or outcome.events[origin.index][0] <= written:
                        outcome.events[origin.index] = (written, event)  # type: ignore[assignment]

    def read_dead_letters(self, topic: str, since: int | None) -> None:
        """Index the dead letters of ``topic`` written from ``since`` (ms; None: the beginning). NoSuchTopic if none."""
        with TopicReader(self.consumer_config, topic) as reader:
            for message in reader.read(reader.bounds(since=since)):
                source = raw.dead_letter_source(message.headers())
                if source is None or source[0] != self.raw_topic or not self.wanted(source[1], source[2]):
                    continue
                headers = {name: value or b"" for name, value in message.headers() or ()}
                outcome = self.records.setdefault((source[1], source[2]), RecordOutcome())
                outcome.letters += 1
                if raw.DLQ_ATTEMPTS not in headers:
                    outcome.failures.add(headers.get(raw.DLQ_FAILED_AT, b""))
                outcome.reason = "{}: {}".format(
                    *(headers.get(name, b"").decode("utf-8", "replace") for name in (raw.DLQ_ERROR_CLASS, raw.DLQ_ERROR_MESSAGE))
                )
