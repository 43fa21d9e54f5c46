"""Normalizer settings (environment variables, prefix ``ESPSTREAM_``). No webhook secrets here."""

from pydantic import Field

from espstream.plumbing.config import CommonSettings

from .request import NormalizeOptions


class NormalizerSettings(CommonSettings):
    normalizer_group: str = "espstream-normalizer"
    # Raw records handled between two commits.
    normalizer_batch_size: int = 500
    # A batch is normalized when full or after this long: under light load the most a
    # webhook waits for others before its events are written. 0: a batch is what the client
    # has fetched, normalized at once (less latency, more produce requests and commits).
    normalizer_batch_wait_ms: int = Field(20, ge=0)
    # A crashed member's partitions move after this long; the embedded broker also
    # takes about half of it to complete a group join.
    kafka_session_timeout_ms: int = 6000
    # How long a produced event may wait for the broker before the batch is re-read.
    normalizer_delivery_timeout_ms: int = 60000
    # anymail's SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED: SparkPost's initial_open and
    # amp_initial_open become opened events too (else unknown, to avoid a double open).
    sparkpost_track_initial_open_as_opened: bool = False
    # Prometheus metrics of this process at http://<metrics_host>:<port>/metrics; 0: not served.
    # Each normalizer process on a host needs a port of its own.
    normalizer_metrics_port: int = Field(0, ge=0, le=65535)
    # Where that port listens (0.0.0.0 for a scraper on another host or container).
    metrics_host: str = "127.0.0.1"

    @property
    def normalize_options(self) -> NormalizeOptions:
        """The options normalize() takes under these settings."""
        return NormalizeOptions(sparkpost_track_initial_open_as_opened=self.sparkpost_track_initial_open_as_opened)
