"""A range of a topic's records, per partition [start, end), and reading it.

Replays and diffs name a range by times (ISO 8601) or by partition offsets. A
time becomes, per partition, the first offset whose record is at or after it:
``offsets_for_times`` answers, and one read on each side of its answer checks it;
where the check fails the offset is found by bisecting reads. (Tansu, the
embedded broker, answers by its own append time and answers 0 when no record is
that late.) Ends are fixed when the range is resolved, by reading each partition
to its end: the embedded broker reports a high watermark short of a
multi-record batch's end.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from espstream.schemas import raw
from espstream.schemas.esps import esp_slug as schema_esp_slug

READ_TIMEOUT_SECONDS = 30.0
# librdkafka settings for reading a bounded range: a fetch at the end of a partition comes back
# (and tells end-of-partition) after this long rather than the default half second.
RANGE_CONSUMER_CONFIG = {"enable.partition.eof": True, "fetch.wait.max.ms": 50}


class RangeError(ValueError):
    """A range that cannot be read: a bad time or offset, an unknown partition or ESP, a missing topic."""


def parse_offsets(items: Iterable[str]) -> dict[int, int]:
    """``["0:100", "1:250"]`` -> ``{0: 100, 1: 250}``."""
    offsets: dict[int, int] = {}
    for item in items:
        partition, sep, offset = item.partition(":")
        try:
            if not sep:
                raise ValueError
            offsets[int(partition)] = int(offset)
        except ValueError:
            raise RangeError(f"{item!r} is not PARTITION:OFFSET (e.g. 0:100)") from None
        if offsets[int(partition)] < 0 or int(partition) < 0:
            raise RangeError(f"{item!r}: partitions and offsets are not negative")
    return offsets


def esp_slug(name: str) -> str:
    """The URL slug of an ESP given by slug or anymail name, any case; RangeError if none."""
    try:
        return schema_esp_slug(name)
    except ValueError as error:
        raise RangeError(str(error)) from None


def record_esp(message: Message) -> str:
    """The ``esp`` header of a raw record ("" when missing)."""
    for name, value in message.headers() or ():
        if name == raw.ESP and value is not None:
            return value.decode("utf-8", "replace")
    return ""


@dataclass(slots=True, frozen=True)
class RangeSpec:
    """What the user asked for; None means from the beginning / to the end at start."""

    from_time: int | None = None
    to_time: int | None = None
    from_offsets: dict[int, int] | None = None
    to_offsets: dict[int, int] | None = None

    def __post_init__(self) -> None:
        if self.from_time is not None and self.from_offsets is not None:
            raise RangeError("give a start as a time or as offsets, not both")
        if self.to_time is not None and self.to_offsets is not None:
            raise RangeError("give an end as a time or as offsets, not both")

    def partitions(self, existing: Sequence[int]) -> list[int]:
        """The partitions named by offsets, else every one."""
        named = set(self.from_offsets or ()) | set(self.to_offsets or ())
        if not named:
            return sorted(existing)
        unknown = named - set(existing)
        if unknown:
            raise RangeError(f"no partition {', '.join(map(str, sorted(unknown)))} (the topic has {len(existing)})")
        return sorted(named)

    def identity(self) -> dict[str, Any]:
        """A JSON-able description, for naming a replay after what it covers."""
        return {
            "from_time": self.from_time,
            "to_time": self.to_time,
            "from_offsets": sorted((self.from_offsets or {}).items()),
            "to_offsets": sorted((self.to_offsets or {}).items()),
        }


Bounds = dict[int, tuple[int, int]]  # partition -> (start, end): offsets start .. end-1


def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=READ_TIMEOUT_SECONDS).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise RangeError(f"topic {topic!r} does not exist")
    return sorted(metadata.partitions)


def resolve(consumer: Consumer, topic: str, spec: RangeSpec, ends: dict[int, int] | None = None) -> Bounds:
    """Per partition, the offsets the range covers now; ``ends`` (already fixed) win over the spec's."""
    partitions = spec.partitions(topic_partitions(consumer, topic))
    lows = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=READ_TIMEOUT_SECONDS)[0] for p in partitions}
    latest = end_offsets(consumer, topic, partitions)
    probe = TimeProbe(consumer, topic)
    bounds: Bounds = {}
    for p in partitions:
        low, last = lows[p], latest[p]
        if spec.from_time is not None:
            start = probe.offset_for_time(p, spec.from_time, low, last)
        else:
            start = min(max((spec.from_offsets or {}).get(p, low), low), last)
        if ends is not None and p in ends:
            end = ends[p]
        elif spec.to_time is not None:
            end = probe.offset_for_time(p, spec.to_time, low, last)
        else:
            end = min((spec.to_offsets or {}).get(p, last), last)
        bounds[p] = (start, max(start, end))
    return bounds


def end_offsets(consumer: Consumer, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    """Each partition's end now, found by reading from its high watermark to end-of-partition."""
    starts = []
    for p in partitions:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=READ_TIMEOUT_SECONDS)
        starts.append(TopicPartition(topic, p, max(high, 0)))
    ends: dict[int, int] = {}
    consumer.assign(starts)
    try:
        deadline = time.monotonic() + READ_TIMEOUT_SECONDS
        while len(ends) < len(starts):
            if time.monotonic() > deadline:
                missing = sorted(set(partitions) - set(ends))
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{topic}: no end of partitions {missing}"))
            for message in consumer.consume(500, timeout=0.1):
                error = message.error()
                if error is None:
                    continue
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                ends[message.partition()] = message.offset()  # the position after the last record
    finally:
        consumer.unassign()
    return ends


class TimeProbe:
    """First offsets at or after a time: ``offsets_for_times``, checked by reading, else bisected by reading."""

    def __init__(self, consumer: Consumer, topic: str):
        self.consumer = consumer
        self.topic = topic

    def offset_for_time(self, partition: int, moment: int, low: int, end: int) -> int:
        """The first offset in [low, end) whose record's timestamp is >= ``moment``; ``end`` if none."""
        if low >= end:
            return end
        answer = self.consumer.offsets_for_times([TopicPartition(self.topic, partition, moment)], timeout=READ_TIMEOUT_SECONDS)[0]
        guess = end if answer.offset < 0 else min(max(answer.offset, low), end)
        if self._is_boundary(partition, moment, guess, low, end):
            return guess
        # Timestamps are taken as non-decreasing within a partition, as the broker's time index takes them.
        lo, hi = low, end
        while lo < hi:
            mid = (lo + hi) // 2
            found, stamp = self.record_at(partition, mid, end)
            if found >= end or stamp >= moment:
                hi = mid
            else:
                lo = found + 1
        return lo

    def _is_boundary(self, partition: int, moment: int, offset: int, low: int, end: int) -> bool:
        if offset < end and self.record_at(partition, offset, end)[1] < moment:
            return False
        return offset == low or self.record_at(partition, offset - 1, end)[1] < moment

    def record_at(self, partition: int, offset: int, end: int) -> tuple[int, int]:
        """The offset and timestamp (ms) of the first record at or after ``offset``; (end, 0) if none before ``end``."""
        self.consumer.assign([TopicPartition(self.topic, partition, offset)])
        try:
            deadline = time.monotonic() + READ_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                message = self.consumer.poll(0.1)
                if message is None or message.partition() != partition:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return end, 0
                    raise KafkaException(error)
                if message.offset() >= offset:
                    return (message.offset(), message.timestamp()[1]) if message.offset() < end else (end, 0)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{self.topic}[{partition}]@{offset}: not read"))
        finally:
            self.consumer.unassign()


class RangeReader:
    """Reads the records of ``bounds`` in batches; a partition stops at its end.

    A partition has reached its end once a record at or past its end, or the end
    of the partition past it, was read; it is then paused. ``rewind`` puts a
    batch back to be read again.
    """

    def __init__(self, consumer: Consumer, topic: str, bounds: Bounds):
        self.consumer = consumer
        self.topic = topic
        self.ends = {p: end for p, (_start, end) in bounds.items()}
        self.reached = {p for p, (start, end) in bounds.items() if start >= end}
        consumer.assign([TopicPartition(topic, p, start) for p, (start, end) in bounds.items() if start < end])

    @property
    def finished(self) -> bool:
        return len(self.reached) == len(self.ends)

    def batch(self, size: int, timeout: float = 0.1) -> list[Message]:
        """The next records within the range (possibly none)."""
        records = []
        for message in self.consumer.consume(size, timeout=timeout):
            partition = message.partition()
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if message.offset() >= self.ends[partition]:
                    self._reach(partition)
            elif partition in self.reached:
                continue  # fetched before the partition was paused
            elif message.offset() >= self.ends[partition]:
                self._reach(partition)
            else:
                records.append(message)
        return records

    def rewind(self, first: Sequence[TopicPartition]) -> None:
        """Read from these offsets again (a batch whose outputs were not acknowledged)."""
        for tp in first:
            self.reached.discard(tp.partition)
        self.consumer.resume(list(first))
        for tp in first:
            self.consumer.seek(tp)

    def _reach(self, partition: int) -> None:
        if partition not in self.reached:
            self.reached.add(partition)
            self.consumer.pause([TopicPartition(self.topic, partition)])
