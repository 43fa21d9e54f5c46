"""Metrics every espstream service shares: consumer lag, serving a process's metrics, and its probes.

Lag comes from librdkafka's statistics (``stats_cb``): every few seconds it
reports, per assigned partition, how far the group's committed offset is behind
the partition's end. Consumer groups and the normalizer's group use the same
gauge. Nothing is computed per record.

The metrics port answers ``/metrics``; for a worker with a ``Liveness`` (the
normalizer, a consumer group) also ``/healthz`` and ``/readyz``, Kubernetes'
probes; any other path is a 404.
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        self.lags: dict[tuple[str, str], int] = {}  # the latest report's, for /readyz

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
        self.lags = lags


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


class ProbeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESPSTREAM_", extra="ignore")

    # /readyz answers 503 when the poll loop has not polled for this long (a receiver or a
    # flush holding it); liveness probes should ask /healthz, which only needs the process.
    ready_max_poll_age_seconds: float = Field(60.0, gt=0)


class Liveness:
    """What a worker's poll loop tells ``/readyz``: its assigned partitions and when it last polled.

    ``polled()`` is a clock read and a store, once per poll (a batch), never per record;
    the HTTP thread only reads.
    """

    def __init__(self, max_poll_age_seconds: float | None = None, lag: ConsumerLag | None = None):
        self.max_poll_age = max_poll_age_seconds or ProbeSettings().ready_max_poll_age_seconds
        self.lag = lag
        self.last_poll: float | None = None
        self.assigned: frozenset[tuple[str, int]] = frozenset()

    def polled(self) -> None:
        self.last_poll = time.monotonic()

    def assign(self, partitions: Iterable[Any]) -> None:
        """``partitions``: TopicPartitions now assigned (besides those already)."""
        self.assigned = self.assigned | {(tp.topic, tp.partition) for tp in partitions}

    def revoke(self, partitions: Iterable[Any]) -> None:
        self.assigned = self.assigned - {(tp.topic, tp.partition) for tp in partitions}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when partitions are assigned and the last poll is recent; what was seen, for the probe's body."""
        last_poll, assigned = self.last_poll, self.assigned
        age = None if last_poll is None else round(time.monotonic() - last_poll, 3)
        ready = bool(assigned) and age is not None and age <= self.max_poll_age
        partitions: dict[str, list[int]] = {}
        for topic, partition in sorted(assigned):
            partitions.setdefault(topic, []).append(partition)
        lags = self.lag.lags if self.lag is not None else {}
        return ready, {
            "ready": ready,
            "assigned": partitions,
            "last_poll_age_seconds": age,
            "max_poll_age_seconds": self.max_poll_age,
            "lag": {f"{topic}[{partition}]": lag for (topic, partition), lag in sorted(lags.items())},
        }


class MetricsPortUnavailable(OSError):
    """The metrics port cannot be listened on (taken, or not an address of this host)."""


def serve(
    host: str,
    port: int,
    setting: str,
    logger: logging.Logger,
    registry: CollectorRegistry = REGISTRY,
    liveness: Liveness | None = None,
) -> WSGIServer:
    """Serve ``registry`` at ``/metrics`` (and ``liveness`` at ``/healthz``, ``/readyz``) on ``host:port`` from a daemon thread.

    ``setting`` names the port in errors. ``shutdown()`` the result to stop.
    MetricsPortUnavailable when the port cannot be listened on.
    """
    try:
        # An IPv6 host gets an IPv6 socket, as with prometheus_client's start_http_server.
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server_class = type("MetricsServer", (ThreadingWSGIServer,), {"address_family": family})
        server = make_server(host, port, _probes_app(make_wsgi_app(registry), liveness), server_class, _QuietHandler)
    except OSError as error:
        raise MetricsPortUnavailable(f"{setting}={port} on {host}: {error.strerror or error}") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("metrics on http://%s:%d/metrics%s", host, port, " (probes: /healthz, /readyz)" if liveness else "")
    return server


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _probes_app(metrics: WsgiApp, liveness: Liveness | None) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if liveness is not None and path == "/healthz":
            return _json(start_response, "200 OK", {"alive": True})
        if liveness is not None and path == "/readyz":
            ready, body = liveness.readiness()
            return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)
        return _json(start_response, "404 Not Found", {"error": f"no {path}: ask /metrics" + (", /healthz or /readyz" if liveness else "")})

    return app


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape or probe."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
