"""One compacted state topic held in memory: key -> state, read to the topic's end, then what was added since."""

import logging
from collections.abc import Callable
from typing import Any

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.reader import TopicReader

from .records import StateCodec

Join = Callable[[Any, Any], Any]


class StateTable:
    """The states of one topic by key; a tombstone removes its key.

    With ``join`` every value read is joined into the key's state (the service: a
    value another writer made without ours loses nothing); without, the last value
    per key is the state, as compaction would leave it (the broker may not compact).
    """

    def __init__(self, settings: CommonSettings, codec: StateCodec, join: Join | None = None):
        self.topic = codec.topic
        self.codec = codec
        self.join = join
        self.states: dict[str, Any] = {}
        self._config = settings.kafka(logger=logging.getLogger("espstream.kafka"))
        self._next: dict[int, int] = {}  # partition -> the first offset not read yet

    def refresh(self) -> int:
        """Read what the topic holds past what was read (all of it the first time); how many records."""
        read = 0
        # A reader per refresh: one that has read a range keeps its partitions paused.
        with TopicReader(self._config, self.topic) as reader:
            bounds = reader.bounds(offsets=self._next)
            for message in reader.read(bounds):
                read += 1
                self.apply(message.key().decode(), self.codec.decode(message.value()))
        self._next = {partition: end for partition, (_start, end) in bounds.items()}
        return read

    def apply(self, key: str, state: Any) -> Any:
        """``state`` into ``key``'s (joined, or in its place); the key's state now (None: removed)."""
        if state is None:
            self.states.pop(key, None)
            return None
        current = self.states.get(key)
        if current is not None and self.join is not None:
            state = self.join(current, state)
        self.states[key] = state
        return state
