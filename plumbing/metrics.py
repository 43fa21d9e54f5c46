"""Metrics every espstream service shares: consumer lag, and serving a process's metrics.

Lag comes from librdkafka's statistics (``stats_cb``): every few seconds it
reports, per assigned partition, how far the group's committed offset is behind
the partition's end. Consumer groups and the normalizer's group use the same
gauge. Nothing is computed per record.
"""

import json
import logging
from http.server import HTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, start_http_server

log = logging.getLogger("espstream.metrics")

# How often librdkafka reports statistics (hence lag) unless ESPSTREAM_KAFKA_CONFIG says otherwise.
STATISTICS_INTERVAL_MS = 5000

LAG = Gauge(
    "espstream_consumer_lag_records",
    "Records after the group's committed offset on each partition this process is assigned "
    "(librdkafka's consumer_lag), by consumer group, topic and partition",
    ["group", "topic", "partition"],
)


class ConsumerLag:
    """A librdkafka ``stats_cb``: sets the lag gauge of each assigned partition, drops those no longer assigned."""

    def __init__(self, group: str):
        self.group = group
        self._reported: set[tuple[str, str]] = set()

    def config(self, kafka_config: dict[str, Any]) -> dict[str, Any]:
        """The consumer's librdkafka properties for this callback: the user's interval, if any, wins."""
        return {"statistics.interval.ms": kafka_config.get("statistics.interval.ms", STATISTICS_INTERVAL_MS), "stats_cb": self}

    def __call__(self, stats_json: str) -> None:
        try:
            lags = partition_lags(json.loads(stats_json))
        except (ValueError, AttributeError, TypeError) as error:  # statistics are best effort; never stop consuming
            log.debug("unreadable librdkafka statistics: %s", error)
            return
        for topic, partition in self._reported - lags.keys():
            LAG.remove(self.group, topic, partition)
        for (topic, partition), lag in lags.items():
            LAG.labels(self.group, topic, partition).set(lag)
        self._reported = set(lags)


def partition_lags(stats: dict[str, Any]) -> dict[tuple[str, str], int]:
    """(topic, partition) -> records after the group's committed offset, for each assigned partition.

    librdkafka's ``consumer_lag`` is -1 until the group has committed on the
    partition; espstream's consumers then start at the beginning
    (``auto.offset.reset=earliest``), so the lag is everything the partition holds.
    """
    lags = {}
    for topic, topic_stats in stats.get("topics", {}).items():
        for partition, partition_stats in topic_stats.get("partitions", {}).items():
            # "-1" is librdkafka's internal unassigned partition; fetch_state "none": not assigned here.
            if partition == "-1" or partition_stats.get("fetch_state", "none") == "none":
                continue
            lag = partition_stats.get("consumer_lag", -1)
            low, high = partition_stats.get("lo_offset", -1), partition_stats.get("hi_offset", -1)
            if lag < 0 and partition_stats.get("committed_offset", -1) < 0 and 0 <= low <= high:
                lag = high - low
            if lag >= 0:
                lags[(topic, partition)] = lag
    return lags


class MetricsPortUnavailable(OSError):
    """The metrics port cannot be listened on (taken, or not an address of this host)."""


def serve(host: str, port: int, setting: str, logger: logging.Logger, registry: CollectorRegistry = REGISTRY) -> HTTPServer:
    """Serve ``registry`` on ``host:port`` from a daemon thread; ``setting`` names the port in errors.

    ``shutdown()`` the result to stop. MetricsPortUnavailable when the port cannot be listened on.
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise MetricsPortUnavailable(f"{setting}={port} on {host}: {error.strerror or error}") from None
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return server
