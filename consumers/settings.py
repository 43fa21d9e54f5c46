"""Consumer-runner settings (environment variables, prefix ``ESPSTREAM_``)."""

from pydantic import Field

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.deadletters import redrive_group


class ConsumerSettings(CommonSettings):
    # Calls of a failing receiver for one event, the first included.
    consumer_max_attempts: int = Field(3, ge=1)
    # Wait before the second call; it doubles for each further call, up to the cap.
    consumer_retry_backoff_seconds: float = Field(0.5, ge=0)
    consumer_retry_backoff_max_seconds: float = Field(30.0, ge=0)
    # Events read ahead of the slowest unfinished one, per process: what a stop or a
    # rebalance waits for, and how far a key's lane may run ahead of the others.
    consumer_batch_size: int = Field(500, ge=1)
    # Lanes calling receivers in parallel; events of one key always share a lane.
    consumer_concurrency: int = Field(1, ge=1)
    # How many recent dedupe ids each process remembers to drop repeats; 0: off.
    consumer_dedupe_window: int = Field(0, ge=0)
    kafka_session_timeout_ms: int = 6000
    # Prometheus metrics of this process at http://<metrics_host>:<port>/metrics; 0: not served.
    # Each consumer process on a host needs a port of its own (e.g. --group billing on 9102, crm on 9103).
    consumer_metrics_port: int = Field(0, ge=0, le=65535)
    # Where that port listens (0.0.0.0 for a scraper on another host or container).
    metrics_host: str = "127.0.0.1"

    def group_dlq_topic(self, group: str) -> str:
        return f"{self.normalized_topic}.dlq.{group}"

    def group_redrive_group(self, group: str) -> str:
        return redrive_group(group)
