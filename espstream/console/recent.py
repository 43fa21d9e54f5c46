"""The recent-events page's read: the newest records of each partition of the normalized topic.

From the index once it has read the topic to its end (it is at most one
refresh interval behind): reading the topic per request took ~300 ms over 100k
events, most of it the broker's answers to the end and the fetch of the batches
holding the newest records. Until then, read with plumbing.reader (end now
minus ``per_partition`` to the end), one reader kept open under a lock.
"""

import threading
from collections.abc import Callable, Collection

from confluent_kafka import Message

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.reader import NoSuchTopic, TopicReader
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import registry_unreachable

from .index import EventIndex, Indexed


class RecentEvents:
    def __init__(self, settings: CommonSettings, decode: Callable[[bytes, str], TrackingEvent], index: EventIndex):
        self.settings = settings
        self.index = index
        self.topic = settings.normalized_topic
        self.decode = decode
        self._lock = threading.Lock()
        self._reader: TopicReader | None = None

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def newest(
        self, per_partition: int, esps: Collection[str] = (), event_types: Collection[str] = ()
    ) -> list[Indexed]:
        """The last ``per_partition`` events of each partition that match the filters, newest first."""
        events = self.index.newest(per_partition)
        if events is None:
            events = self._from_topic(per_partition)
        events = [e for e in events if (not esps or e.esp in esps) and (not event_types or e.event_type in event_types)]
        return sorted(events, key=lambda e: (e.received_at is not None, e.received_at, e.partition, e.offset), reverse=True)

    def _from_topic(self, per_partition: int) -> list[Indexed]:
        with self._lock:
            try:
                messages = self._read(per_partition)
            except NoSuchTopic:
                return []
            except Exception:
                self._reader, reader = None, self._reader  # a broken consumer is not reused
                if reader is not None:
                    reader.close()
                raise
        return [event for event in map(self._indexed, messages) if event is not None]

    def _read(self, per_partition: int) -> list[Message]:
        if self._reader is None:
            self._reader = TopicReader(self.settings.kafka(), self.topic, timeout=15.0)
        reader = self._reader
        ends = reader.ends(reader.partitions())
        bounds = {p: (max(end - per_partition, 0), end) for p, end in ends.items()}
        return [message for message in reader.read(bounds) if message.value() is not None]

    def _indexed(self, message: Message) -> Indexed | None:
        try:
            return Indexed.of(message, self.decode(message.value(), message.topic()))
        except Exception as error:
            if registry_unreachable(error):
                raise
            return None
