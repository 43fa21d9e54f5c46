"""Which events of each assigned partition are unfinished, and so how far its offset may be committed.

Lanes finish events out of offset order (another key's lane may be faster); a
partition's committable offset is its lowest unfinished offset, or the offset
after the last one read when none is unfinished.
"""

import threading
import time
from collections import deque
from collections.abc import Iterable

from confluent_kafka import TopicPartition

PartitionId = tuple[str, int]


class PartitionWork:
    """The events read from one partition during one assignment of it."""

    def __init__(self, topic: str, partition: int):
        self.id: PartitionId = (topic, partition)
        self.released = False  # revoked or lost: what is left of it is its next owner's
        self.next_offset: int | None = None  # after the last event read
        self.committed: int | None = None
        self._unfinished: deque[int] = deque()
        self._finished: set[int] = set()

    def committable(self) -> int | None:
        while self._unfinished and self._unfinished[0] in self._finished:
            self._finished.discard(self._unfinished.popleft())
        return self._unfinished[0] if self._unfinished else self.next_offset


class InFlight:
    """Every assigned partition's work, shared by the polling thread and the lanes."""

    def __init__(self) -> None:
        self._partitions: dict[PartitionId, PartitionWork] = {}
        self._count = 0
        self._changed = threading.Condition()

    def assign(self, partitions: Iterable[PartitionId]) -> None:
        with self._changed:
            for pid in partitions:
                self._partitions[pid] = PartitionWork(*pid)

    def partitions(self) -> set[PartitionId]:
        """The partitions assigned now."""
        with self._changed:
            return set(self._partitions)

    def get(self, pid: PartitionId) -> PartitionWork | None:
        with self._changed:
            return self._partitions.get(pid)

    def start(self, work: PartitionWork, offset: int) -> bool:
        """Record ``offset`` as read; False if it was read already during this assignment."""
        with self._changed:
            if work.next_offset is not None and offset < work.next_offset:
                return False
            work._unfinished.append(offset)
            work.next_offset = offset + 1
            self._count += 1
            return True

    def rewind(self, work: PartitionWork, offset: int) -> None:
        """``offset`` will be read again (after a seek)."""
        with self._changed:
            work.next_offset = offset

    def finish(self, work: PartitionWork, offset: int) -> None:
        with self._changed:
            if work.released:
                return
            work._finished.add(offset)
            self._count -= 1
            self._changed.notify_all()

    def unfinished(self) -> int:
        with self._changed:
            return self._count

    def read_ahead(self) -> int:
        """Events held from each partition's lowest unfinished one on, finished or not.

        What a crash would hand over to be handled again, and what is kept in memory:
        a receiver stuck on one event holds every later event of its partition.
        """
        with self._changed:
            return self._read_ahead()

    def wait_read_ahead(self, at_most: int, timeout: float) -> None:
        """Until at most ``at_most`` events are read ahead (see ``read_ahead``), or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._read_ahead() > at_most:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def _read_ahead(self) -> int:
        held = 0
        for work in self._partitions.values():
            work.committable()  # drops the finished head
            held += len(work._unfinished)
        return held

    def wait_finished(self, pids: Iterable[PartitionId] | None, give_up: threading.Event) -> None:
        """Until every event read from ``pids`` (default: every partition) is finished, or ``give_up`` is set."""
        wanted = None if pids is None else set(pids)
        with self._changed:
            while not give_up.is_set() and any(
                work.committable() != work.next_offset
                for pid, work in self._partitions.items()
                if wanted is None or pid in wanted
            ):
                self._changed.wait(0.5)

    def to_commit(self, pids: Iterable[PartitionId] | None = None) -> list[TopicPartition]:
        """The committable offsets that moved since the last commit."""
        with self._changed:
            wanted = self._partitions.keys() if pids is None else set(pids) & self._partitions.keys()
            offsets = []
            for pid in wanted:
                work = self._partitions[pid]
                offset = work.committable()
                if offset is not None and offset != work.committed:
                    offsets.append(TopicPartition(pid[0], pid[1], offset))
            return offsets

    def committed(self, offsets: Iterable[TopicPartition]) -> None:
        with self._changed:
            for tp in offsets:
                work = self._partitions.get((tp.topic, tp.partition))
                if work is not None:
                    work.committed = tp.offset

    def release(self, pids: Iterable[PartitionId]) -> None:
        """Forget ``pids``; lanes skip their remaining events, which the next owner reads again."""
        with self._changed:
            for pid in pids:
                work = self._partitions.pop(pid, None)
                if work is not None:
                    work.released = True
                    self._count -= len(work._unfinished) - len(work._finished)
            self._changed.notify_all()
