"""The dead letters the console shows: the normalizer's topic and each receiver group's.

A group's letters are on ``<normalized topic>.dlq.<group>``: the groups are the
topics so named. Pending letters are those after the redrive group's committed
offsets, as ``espstream dlq list`` reads them; a redrive is the CLI's own
(normalizer.redrive, consumers.redrive), one at a time per topic.
"""

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from confluent_kafka import Message
from confluent_kafka.admin import AdminClient

from espstream.consumers.settings import ConsumerSettings
from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.config import CommonSettings
from espstream.plumbing.deadletters import DeadLetterReader, first_line, header_text, letter_attempts, redrive_group
from espstream.schemas import raw

# Letters listed on a page; the count covers them all.
SHOWN = 500
NORMALIZER = "normalizer"


@dataclass(frozen=True, slots=True)
class Source:
    """One dead-letter topic: the normalizer's (``group`` None) or a receiver group's."""

    topic: str
    redrive_group: str
    group: str | None = None

    @property
    def title(self) -> str:
        return "the normalizer" if self.group is None else f"group {self.group}"

    @property
    def path(self) -> str:
        return f"/dead-letters/{NORMALIZER}" if self.group is None else f"/dead-letters/groups/{self.group}"

    def cli(self, *action: str) -> str:
        return " ".join(["espstream dlq", *action, *([f"--group {self.group}"] if self.group else [])])


def normalizer_source() -> Source:
    settings = NormalizerSettings()
    return Source(settings.dlq_topic, redrive_group(settings.normalizer_group))


def group_source(group: str) -> Source:
    settings = ConsumerSettings()
    return Source(settings.group_dlq_topic(group), settings.group_redrive_group(group), group)


def groups(settings: CommonSettings) -> list[str]:
    """The receiver groups that have a dead-letter topic."""
    prefix = ConsumerSettings(**settings.model_dump()).group_dlq_topic("")
    topics = AdminClient(settings.kafka()).list_topics(timeout=15).topics
    return sorted(name.removeprefix(prefix) for name in topics if name.startswith(prefix) and name != prefix)


@dataclass(frozen=True, slots=True)
class Letter:
    """A pending letter as the list shows it."""

    partition: int
    offset: int
    esp: str
    where: str  # the stage (normalizer) or the receiver (group) that failed
    error_class: str
    error: str
    attempts: int
    failed_at: str


def pending(settings: CommonSettings, source: Source, esp_of: Callable[[Message], str | None]) -> tuple[list[Letter], int]:
    """The first SHOWN pending letters of ``source`` and how many are pending."""
    shown, count = [], 0
    with DeadLetterReader(settings.kafka(), source.topic, source.redrive_group) as reader:
        for message in reader.letters():
            count += 1
            if len(shown) < SHOWN:
                shown.append(_letter(message, source, esp_of))
    return shown, count


def _letter(message: Message, source: Source, esp_of: Callable[[Message], str | None]) -> Letter:
    where = raw.DLQ_STAGE if source.group is None else raw.DLQ_RECEIVER
    return Letter(
        message.partition(), message.offset(), esp_of(message) or header_text(message, raw.ESP) or "?",
        header_text(message, where) or "?", header_text(message, raw.DLQ_ERROR_CLASS) or "?",
        first_line(header_text(message, raw.DLQ_ERROR_MESSAGE), 200), letter_attempts(message),
        header_text(message, raw.DLQ_FAILED_AT) or "",
    )


_redriving: dict[str, threading.Lock] = {}
_redriving_guard = threading.Lock()


class RedriveRunning(RuntimeError):
    """A redrive or a discard of this topic is already running."""


def _alone(source: Source, action: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``action()`` unless another redrive or discard of ``source``'s topic runs: their commits would interleave."""
    with _redriving_guard:
        lock = _redriving.setdefault(source.topic, threading.Lock())
    if not lock.acquire(blocking=False):
        raise RedriveRunning(f"a redrive or discard of {source.topic} is running; wait for it")
    try:
        return action()
    finally:
        lock.release()


def redrive(source: Source) -> list[dict[str, Any]]:
    """Redrive ``source``'s pending letters as ``espstream dlq redrive`` does; each letter's outcome."""

    def run() -> list[dict[str, Any]]:
        if source.group is None:
            from espstream.normalizer.redrive import redrive as normalizer_redrive

            return [asdict(outcome) for outcome in normalizer_redrive()]
        from espstream.consumers.redrive import redrive as group_redrive

        return [asdict(outcome) for outcome in group_redrive(source.group)]

    return _alone(source, run)


def discard(settings: CommonSettings, source: Source, partition: int, offset: int, reason: str, by: str) -> list[dict[str, Any]]:
    """Discard one pending letter as ``espstream dlq discard`` does, ``reason`` kept; the outcomes (NotPending if it is not)."""
    from espstream.plumbing.discards import discard as discard_letters

    return _alone(source, lambda: [asdict(o) for o in discard_letters(settings, source.topic, source.redrive_group,
                                                                       [(partition, offset)], reason, by)])
