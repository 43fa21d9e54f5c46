"""The normalizer's Prometheus metrics.

Per record the service only adds to a ``BatchTally`` (plain dict counts); the
counters, the ``unknown`` share and the latency are updated once per batch,
after the broker acknowledged everything produced for it. So a batch read
again after a failed delivery is counted once, when it finally went through.

Labels: the ESP's URL slug (``other`` for a record naming no known ESP), the
event type, the dead letter's stage and error class. The consumer lag of the
normalizer's group is ``espstream_consumer_lag_records`` (consumers.metrics).
"""

import time
from collections import deque
from collections.abc import Iterable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EVENT_TYPES
from espstream.schemas.esps import ESP_SLUGS

disable_created_metrics()

OTHER = "other"
UNKNOWN = "unknown"
# The unknown share is over about this many of an ESP's latest events (at most one batch more).
UNKNOWN_WINDOW_EVENTS = 1000

RECORDS = Counter(
    "espstream_normalizer_records",
    "Raw records done with (their events or their dead letter acknowledged), by ESP",
    ["esp"],
)
EVENTS = Counter(
    "espstream_normalizer_events",
    "Events written to the normalized topic and acknowledged, by ESP and event type",
    ["esp", "event_type"],
)
DEAD_LETTERS = Counter(
    "espstream_normalizer_dead_letters",
    "Raw records written to the dead-letter topic, by ESP, failed stage (normalize, encode, produce) "
    "and error class",
    ["esp", "stage", "error_class"],
)
UNKNOWN_SHARE = Gauge(
    "espstream_normalizer_unknown_event_share",
    f"Share of event_type unknown among about the last {UNKNOWN_WINDOW_EVENTS} events of each ESP "
    "normalized by this process: rising, the ESP probably changed its format",
    ["esp"],
)
LATENCY_SECONDS = Histogram(
    "espstream_normalizer_latency_seconds",
    "Per batch: from its oldest raw record's timestamp (the gateway's write) to the batch's events "
    "acknowledged and its offsets committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
BATCH_SECONDS = Histogram(
    "espstream_normalizer_batch_seconds",
    "Time to normalize a batch, produce its records, wait for their acknowledgement and commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
BATCH_SIZE = Histogram(
    "espstream_normalizer_batch_records",
    "Raw records per batch",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
BATCHES_RETRIED = Counter(
    "espstream_normalizer_batches_retried",
    "Batches read again because a produced record was not acknowledged",
)


def esp_label(esp: str | None) -> str:
    return esp if esp in ESP_SLUGS else OTHER


class BatchTally:
    """What one batch did, counted in plain dicts on the hot path."""

    __slots__ = ("records", "events", "dead_letters")

    def __init__(self) -> None:
        self.records: dict[str, int] = {}
        self.events: dict[tuple[str, str], int] = {}
        self.dead_letters: dict[tuple[str, str, str], int] = {}

    def normalized(self, esp: str, events: Iterable[TrackingEvent]) -> None:
        records, counts = self.records, self.events
        records[esp] = records.get(esp, 0) + 1
        for event in events:
            key = (esp, event.event_type)
            counts[key] = counts.get(key, 0) + 1

    def dead_lettered(self, esp: str, stage: str, error: BaseException) -> None:
        self.records[esp] = self.records.get(esp, 0) + 1
        key = (esp, stage, type(error).__name__)
        self.dead_letters[key] = self.dead_letters.get(key, 0) + 1


class UnknownShare:
    """Per ESP, the share of ``unknown`` events over its latest events, kept as per-batch chunks."""

    def __init__(self, window: int = UNKNOWN_WINDOW_EVENTS):
        self.window = window
        self._chunks: dict[str, deque[tuple[int, int]]] = {}  # esp -> (events, unknown) per batch
        self._totals: dict[str, list[int]] = {}  # esp -> [events, unknown] over its chunks

    def add(self, esp: str, events: int, unknown: int) -> float:
        """Add a batch's counts; the share over the window now."""
        chunks = self._chunks.setdefault(esp, deque())
        totals = self._totals.setdefault(esp, [0, 0])
        chunks.append((events, unknown))
        totals[0] += events
        totals[1] += unknown
        # Drop old chunks while the rest still covers the window.
        while len(chunks) > 1 and totals[0] - chunks[0][0] >= self.window:
            old_events, old_unknown = chunks.popleft()
            totals[0] -= old_events
            totals[1] -= old_unknown
        return totals[1] / totals[0] if totals[0] else 0.0


class NormalizerMetrics:
    """The process's counters, their children bound on first use."""

    def __init__(self) -> None:
        self._records: dict[str, Counter] = {}
        self._events: dict[tuple[str, str], Counter] = {}
        self._dead_letters: dict[tuple[str, str, str], Counter] = {}
        self._unknown = UnknownShare()

    def batch_done(self, tally: BatchTally, messages: list[Message], started: float) -> None:
        """A batch is acknowledged and committed: count it."""
        if not tally.records:  # nothing but consume errors
            return
        now = time.perf_counter()
        BATCH_SECONDS.observe(now - started)
        BATCH_SIZE.observe(len(messages))
        oldest = _oldest_timestamp(messages)
        if oldest is not None:
            LATENCY_SECONDS.observe(max(0.0, time.time() - oldest))
        for esp, count in tally.records.items():
            _child(self._records, RECORDS, (esp,)).inc(count)
        per_esp: dict[str, list[int]] = {}
        for (esp, event_type), count in tally.events.items():
            # The schema allows only its event types; anything else would be a label nobody asked for.
            _child(self._events, EVENTS, (esp, event_type if event_type in EVENT_TYPES else OTHER)).inc(count)
            totals = per_esp.setdefault(esp, [0, 0])
            totals[0] += count
            if event_type == UNKNOWN:
                totals[1] += count
        for key, count in tally.dead_letters.items():
            _child(self._dead_letters, DEAD_LETTERS, key).inc(count)
        for esp, (events, unknown) in per_esp.items():
            UNKNOWN_SHARE.labels(esp).set(self._unknown.add(esp, events, unknown))

    def batch_retried(self) -> None:
        BATCHES_RETRIED.inc()


def _child(children: dict, metric: Counter, labels: tuple[str, ...]) -> Counter:
    child = children.get(labels)
    if child is None:
        child = children[labels] = metric.labels(*labels)
    return child


def _oldest_timestamp(messages: list[Message]) -> float | None:
    """The oldest record timestamp of the batch, in seconds; None if none has one."""
    stamps = [stamp for kind, stamp in (m.timestamp() for m in messages) if kind != TIMESTAMP_NOT_AVAILABLE]
    return min(stamps) / 1000 if stamps else None
