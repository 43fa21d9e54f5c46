"""`espstream status` settings (environment variables, prefix ``ESPSTREAM_``); the topics are CommonSettings'."""

from pydantic import Field

from espstream.plumbing.config import CommonSettings


class StatusSettings(CommonSettings):
    status_group: str = "espstream-status"
    # Events joined into the state between two commits.
    status_batch_size: int = Field(500, ge=1)
    # A batch is handled when full or after this long: under light load, the most a state record waits.
    status_batch_wait_ms: int = Field(20, ge=0)
    kafka_session_timeout_ms: int = 6000
    # Prometheus metrics and the /healthz, /readyz probes on this port; 0: not served.
    status_metrics_port: int = Field(0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
