"""The range of the raw topic a replay or diff covers, per partition [start, end).

Replays and diffs name a range by times (ISO 8601) or by partition offsets. A
time becomes, per partition, the first offset whose record is at or after it,
and ends are fixed when the range is resolved: both found by reading, as
plumbing.reader finds them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from espstream.plumbing.reader import Bounds, NoSuchTopic, TopicReader
from espstream.schemas import raw
from espstream.schemas.esps import esp_slug as schema_esp_slug


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


def partitions(reader: TopicReader) -> list[int]:
    """The partitions of the reader's topic; RangeError if there is no such topic."""
    try:
        return reader.partitions()
    except NoSuchTopic:
        raise RangeError(f"topic {reader.topic!r} does not exist") from None


def resolve(reader: TopicReader, spec: RangeSpec, ends: dict[int, int] | None = None) -> Bounds:
    """Per partition, the offsets the range covers now; ``ends`` (already fixed) win over the spec's."""
    bounds = reader.bounds(spec.partitions(partitions(reader)), offsets=spec.from_offsets, since=spec.from_time)
    for p, (start, last) in bounds.items():
        if ends is not None and p in ends:
            end = ends[p]
        elif spec.to_time is not None:
            end = reader.offset_for_time(p, spec.to_time, start, last)
        else:
            end = min((spec.to_offsets or {}).get(p, last), last)
        bounds[p] = (start, max(start, end))
    return bounds
