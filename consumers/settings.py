"""Consumer-runner settings (environment variables, prefix ``ESPSTREAM_``)."""

from espstream.config import CommonSettings


class ConsumerSettings(CommonSettings):
    # Calls of a failing receiver for one event, the first included.
    consumer_max_attempts: int = 3
    # Wait before the second call; it doubles for each further call, up to the cap.
    consumer_retry_backoff_seconds: float = 0.5
    consumer_retry_backoff_max_seconds: float = 30.0
    consumer_batch_size: int = 500
    kafka_session_timeout_ms: int = 6000

    def group_dlq_topic(self, group: str) -> str:
        return f"{self.normalized_topic}.dlq.{group}"
