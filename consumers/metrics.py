"""Prometheus metrics of a consumer group member (consumer lag: espstream.plumbing.metrics).

Labels: the group, the receiver (``module.qualname``: as many as the code has),
the outcome. Never event ids, request ids or recipients.
"""

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram, disable_created_metrics

from espstream.schemas import TrackingEvent

from .dispatch import Dispatcher, Failure
from .signals import Connection

log = logging.getLogger("espstream.consumers")

disable_created_metrics()

EVENTS = Counter(
    "espstream_consumer_events",
    "Events finished by a consumer group member, by outcome: handled (every wanted receiver returned), "
    "dead_lettered (a receiver failed every attempt; its dead letter is written), duplicate (dropped by "
    "the dedupe window), undecodable (dead-lettered as (decode))",
    ["group", "outcome"],
)
RECEIVER_FAILURES = Counter(
    "espstream_consumer_receiver_failures",
    "Receiver calls that raised, every attempt counted, by group and receiver",
    ["group", "receiver"],
)
RETRIES = Counter(
    "espstream_consumer_retries",
    "Receiver calls that were a retry after a failure, by group and receiver",
    ["group", "receiver"],
)
DEAD_LETTERS = Counter(
    "espstream_consumer_dead_letters",
    "Dead letters written to the group's dead-letter topic, by receiver ((decode): not decodable)",
    ["group", "receiver"],
)
EVENT_SECONDS = Histogram(
    "espstream_consumer_event_seconds",
    "Time from an event's first receiver call to its last, retries included, by group",
    ["group"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
EVENT_AGE_SECONDS = Histogram(
    "espstream_consumer_event_age_seconds",
    "From the gateway's receipt of the webhook to its event finished in this group (end to end), by group",
    ["group"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


class GroupMetrics:
    """One group's children, bound once; receivers' children on first use."""

    def __init__(self, group: str):
        self.group = group
        self._outcomes = {outcome: EVENTS.labels(group, outcome) for outcome in ("handled", "dead_lettered", "duplicate", "undecodable")}
        self._event_seconds = EVENT_SECONDS.labels(group)
        self._event_age = EVENT_AGE_SECONDS.labels(group)
        self._failures: dict[str, Counter] = {}
        self._retries: dict[str, Counter] = {}
        self._dead_letters: dict[str, Counter] = {}

    def finished(self, outcome: str, event: TrackingEvent | None, started: float | None) -> None:
        """An event is finished: count it, and time it when it was handled or dead-lettered."""
        self._outcomes[outcome].inc()
        if started is not None:
            self._event_seconds.observe(time.perf_counter() - started)
        received_at = event.provenance.received_at if event is not None and event.provenance is not None else None
        if received_at is not None:
            self._event_age.observe(max(0.0, time.time() - received_at.timestamp()))

    def failed(self, receiver: str) -> None:
        _child(self._failures, RECEIVER_FAILURES, self.group, receiver).inc()

    def retried(self, receiver: str) -> None:
        _child(self._retries, RETRIES, self.group, receiver).inc()

    def dead_lettered(self, receiver: str) -> None:
        _child(self._dead_letters, DEAD_LETTERS, self.group, receiver).inc()


def _child(children: dict[str, Counter], metric: Counter, group: str, receiver: str) -> Counter:
    child = children.get(receiver)
    if child is None:
        child = children[receiver] = metric.labels(group, receiver)
    return child


class MeteredDispatcher(Dispatcher):
    """The runner's dispatcher, counting each receiver call that raised and each retry."""

    def __init__(self, *args: Any, metrics: GroupMetrics, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    def _call(
        self, connections: list[Connection], event: TrackingEvent, kwargs: dict[str, Any], attempt: int
    ) -> list[Failure]:
        if attempt > 1:  # deliver() calls again only the receivers that failed
            for connection in connections:
                self.metrics.retried(connection.name)
        failures = super()._call(connections, event, kwargs, attempt)
        for connection, _error in failures:
            self.metrics.failed(connection.name)
        return failures
