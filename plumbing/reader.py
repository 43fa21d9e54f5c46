"""Reading a topic from a start to its end: every bounded read of espstream.

Audits, replays and their diffs, dead-letter listings and redrives, exports, the
registry's log and the start of a tail all read through ``TopicReader``, with
assign() (no group is joined), so "the end" is decided one way. Per partition it
is found by reading: from the high watermark on to the end of the partition
(``enable.partition.eof``), whose position is the end. Neither the watermark nor
ListOffsets(latest) is the end alone: the embedded broker (Tansu) reports a
watermark short of a multi-record batch's end. The end is fixed when a range is
made, so records written after it (a redrive's own letters) are not read.

A start is the beginning, offsets, or a time: ``offsets_for_times`` answers, one
read on each side of its answer checks it, and where the check fails the offset
is found by bisecting reads (Tansu answers by its own append time, and 0 when no
record is that late).
"""

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

# A partition that neither delivers records nor reports its end for this long: the broker is gone.
READ_TIMEOUT_SECONDS = 60.0
# A fetch at the end of a partition answers (end-of-partition) after this long, not librdkafka's half second.
FETCH_WAIT_MS = 10
BATCH = 1000

Bounds = dict[int, tuple[int, int]]  # partition -> (start, end): offsets start .. end-1


class NoSuchTopic(KafkaException):
    """The topic is not in the broker's metadata (or has no partitions)."""


def _timed_out(text: str) -> KafkaException:
    return KafkaException(KafkaError(KafkaError._TIMED_OUT, text))


class TopicReader:
    """A consumer for bounded reads of ``topic``: its partitions, their ends, ranges of their records.

    ``consumer_config`` may name a group (a redrive's or a replay's) whose offsets
    the caller commits on ``consumer``; the reader itself never commits.
    """

    def __init__(self, consumer_config: dict[str, Any], topic: str, timeout: float = READ_TIMEOUT_SECONDS):
        self.topic = topic
        self.timeout = timeout
        self.consumer = Consumer(
            {
                # assign() only: this id is never joined; a fresh one keeps a stray commit off real groups.
                "group.id": f"espstream-reader-{uuid.uuid4().hex}",
                **consumer_config,
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": FETCH_WAIT_MS,
            }
        )

    def __enter__(self) -> "TopicReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.consumer.close()

    def partitions(self) -> list[int]:
        """The topic's partitions; NoSuchTopic if it has none."""
        metadata = self.consumer.list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            error = metadata.error if metadata is not None and metadata.error is not None else None
            raise NoSuchTopic(KafkaError(error.code() if error else KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {self.topic!r} does not exist"))
        return sorted(metadata.partitions)

    def low(self, partition: int) -> int:
        """The partition's first offset (its low watermark: records before it were deleted)."""
        return self.consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=self.timeout)[0]

    def _assign(self, positions: list[TopicPartition]) -> None:
        """Read from ``positions``, none paused: librdkafka keeps a pause (a range's finished partition) across assign()."""
        self.consumer.assign(positions)
        self.consumer.resume(positions)

    def ends(self, partitions: Sequence[int]) -> dict[int, int]:
        """Each partition's end now: read from its high watermark to end-of-partition."""
        starts = []
        for p in partitions:
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout)
            starts.append(TopicPartition(self.topic, p, max(high, 0)))
        ends: dict[int, int] = {}
        self._assign(starts)
        try:
            deadline = time.monotonic() + self.timeout
            while len(ends) < len(starts):
                if time.monotonic() > deadline:
                    raise _timed_out(f"{self.topic}: no end of partitions {sorted(set(partitions) - set(ends))}")
                for message in self.consumer.consume(500, timeout=0.1):
                    error = message.error()
                    if error is None:
                        continue
                    if error.code() != KafkaError._PARTITION_EOF:
                        _raise_unless_retriable(error)
                        continue
                    ends[message.partition()] = message.offset()  # the position after the last record
        finally:
            self.consumer.unassign()
        return ends

    def bounds(
        self, partitions: Sequence[int] | None = None, *, offsets: dict[int, int] | None = None, since: int | None = None
    ) -> Bounds:
        """Per partition (default: all), [start, end now): from the first offset, from ``offsets``, or from ``since`` (ms).

        Offsets are held within the partition's records; a partition ``offsets``
        leaves out starts at its first record.
        """
        partitions = self.partitions() if partitions is None else list(partitions)
        ends = self.ends(partitions)
        bounds: Bounds = {}
        for p in partitions:
            low, end = self.low(p), ends[p]
            if since is not None:
                start = self.offset_for_time(p, since, low, end)
            else:
                start = min(max((offsets or {}).get(p, low), low), end)
            bounds[p] = (start, end)
        return bounds

    def read(self, bounds: Bounds, until: int | None = None) -> Iterator[Message]:
        """The records of ``bounds``, partitions interleaved, each partition in order."""
        records = self.range(bounds, until)
        while not records.finished:
            yield from records.batch(BATCH)

    def range(self, bounds: Bounds, until: int | None = None) -> "Range":
        """The records of ``bounds`` batch by batch; with ``until`` (ms), a partition also ends at its first record as late."""
        return Range(self, bounds, until)

    def offset_for_time(self, partition: int, moment: int, low: int, end: int) -> int:
        """The first offset in [low, end) whose record's timestamp is >= ``moment`` (ms); ``end`` if none."""
        if low >= end:
            return end
        answer = self.consumer.offsets_for_times([TopicPartition(self.topic, partition, moment)], timeout=self.timeout)[0]
        guess = end if answer.offset < 0 else min(max(answer.offset, low), end)
        if self._is_boundary(partition, moment, guess, low, end):
            return guess
        # Timestamps are taken as non-decreasing within a partition, as the broker's time index takes them.
        lo, hi = low, end
        while lo < hi:
            mid = (lo + hi) // 2
            found = self.record_at(partition, mid, end)
            if found is None or found.timestamp()[1] >= moment:
                hi = mid
            else:
                lo = found.offset() + 1
        return lo

    def _is_boundary(self, partition: int, moment: int, offset: int, low: int, end: int) -> bool:
        if offset < end and _stamp(self.record_at(partition, offset, end)) < moment:
            return False
        return offset == low or _stamp(self.record_at(partition, offset - 1, end)) < moment

    def record_at(self, partition: int, offset: int, end: int) -> Message | None:
        """The first record at or after ``offset`` and before ``end``; None if there is none."""
        if offset >= end:
            return None  # a fetch past the end gets no answer from every broker
        self._assign([TopicPartition(self.topic, partition, offset)])
        try:
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                message = self.consumer.poll(0.1)
                if message is None or message.partition() != partition:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return None
                    _raise_unless_retriable(error)
                    continue
                if message.offset() >= offset:
                    return message if message.offset() < end else None
            raise _timed_out(f"{self.topic}[{partition}]@{offset}: not read in {self.timeout}s")
        finally:
            self.consumer.unassign()


class Range:
    """The records of ``bounds`` read in batches; a partition stops at its end.

    A partition has reached its end once a record at or past its end (or, with
    ``until``, one stamped that late), or the end of the partition past it, was
    read; it is then paused. ``rewind`` puts a batch back to be read again.
    """

    def __init__(self, reader: TopicReader, bounds: Bounds, until: int | None = None):
        self.consumer = reader.consumer
        self.topic = reader.topic
        self.timeout = reader.timeout
        self.until = until
        self.ends = {p: end for p, (_start, end) in bounds.items()}
        self.reached = {p for p, (start, end) in bounds.items() if start >= end}
        self._idle_since: float | None = None
        reader._assign([TopicPartition(self.topic, p, start) for p, (start, end) in bounds.items() if start < end])

    @property
    def finished(self) -> bool:
        return len(self.reached) == len(self.ends)

    def batch(self, size: int, timeout: float = 0.1) -> list[Message]:
        """The next records within the range (possibly none)."""
        messages = self.consumer.consume(size, timeout=timeout)
        # Idle from the first empty answer in a row: time the caller spends between batches is not the broker's.
        if messages:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = time.monotonic()
        elif time.monotonic() - self._idle_since > self.timeout:
            pending = sorted(set(self.ends) - self.reached)
            raise _timed_out(f"{self.topic}: partitions {pending} not read to their end in {self.timeout:.0f}s")
        records = []
        for message in messages:
            partition = message.partition()
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    _raise_unless_retriable(error)
                elif message.offset() >= self.ends[partition]:
                    self._reach(partition)
            elif partition in self.reached:
                continue  # fetched before the partition was paused
            elif message.offset() >= self.ends[partition] or (
                self.until is not None and message.timestamp()[1] >= self.until
            ):
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


def _stamp(message: Message | None) -> int:
    """A record's timestamp (ms); none at all counts as before every time."""
    return message.timestamp()[1] if message is not None else 0


def _raise_unless_retriable(error: KafkaError) -> None:
    # A retriable error (a broker restarting) is librdkafka's to retry; the read timeout bounds the wait.
    if error.fatal() or not error.retriable():
        raise KafkaException(error)
