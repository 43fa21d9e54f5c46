"""The gateway's Prometheus metrics, and where they are served.

Labels stay few: the ESP's URL slug (``other`` for a path naming no ESP, so a
client cannot create series), the HTTP status and the outcome's reason. Never
request ids, addresses or recipients.

Served with ``ESPSTREAM_GATEWAY_METRICS_PORT`` on a port of their own, never on
the ESP-facing webhook port: a proxy in front can make any client look local,
and the counts tell how many webhooks each ESP sends.
"""

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from espstream.schemas.esps import ESP_SLUGS

# Counters without a ``_created`` twin each: half the series, nothing lost for rate().
disable_created_metrics()

# The reason of every answer, with its status. Refusals close the connection; see gateway.app.
STATUS_OF_REASON: Mapping[str, int] = {
    "stored": 200,
    "unknown_esp": 404,
    "disabled": 404,
    "auth": 401,
    "content_type": 400,
    "client_gone": 400,
    "too_large": 413,
    "too_slow": 408,
    "signature": 400,
    "signature_unavailable": 503,
    "broker": 503,
    "error": 500,
}
OTHER_ESP = "other"

REQUESTS = Counter(
    "espstream_gateway_requests",
    "Webhook requests answered, by ESP (URL slug), HTTP status and reason",
    ["esp", "status", "reason"],
)
BROKER_ACK_SECONDS = Histogram(
    "espstream_gateway_broker_ack_seconds",
    "Time from handing a raw record to the producer to the broker's acknowledgement (acknowledged records)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BODY_BYTES = Histogram(
    "espstream_gateway_body_bytes",
    "Size of the webhook bodies read (within the size limit), by ESP",
    ["esp"],
    buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576, 2621440),
)
# Summed over the live processes when the gateway runs several (gateway.workers); ignored with one.
IN_FLIGHT = Gauge(
    "espstream_gateway_requests_in_flight", "Webhook requests being handled now", multiprocess_mode="livesum"
)


class RequestMetrics:
    """Labelled children bound on first use and kept: a request costs a dict lookup and an increment.

    Bound lazily rather than for every ESP and reason up front: the exposition
    then lists what happened, not some two hundred zeros.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str], Counter] = {}
        self._body_bytes: dict[str, Histogram] = {}
        self.ack_seconds = BROKER_ACK_SECONDS
        self.in_flight = IN_FLIGHT

    @staticmethod
    def esp_label(esp: str) -> str:
        return esp if esp in ESP_SLUGS else OTHER_ESP

    def answered(self, esp: str, reason: str) -> None:
        child = self._requests.get((esp, reason))
        if child is None:
            child = self._requests[(esp, reason)] = REQUESTS.labels(esp, str(STATUS_OF_REASON[reason]), reason)
        child.inc()

    def body_read(self, esp: str, size: int) -> None:
        child = self._body_bytes.get(esp)
        if child is None:
            child = self._body_bytes[esp] = BODY_BYTES.labels(esp)
        child.observe(size)
