"""Creating espstream's topics."""

from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import KafkaError, KafkaException

from .config import CommonSettings


def wanted_topics(settings: CommonSettings) -> list[NewTopic]:
    record_limit = str(settings.max_record_bytes)
    return [
        # The raw topic is the system of record, and dead letters wait for a fix: keep both.
        retained_topic(settings, settings.raw_topic),
        retained_topic(settings, settings.dlq_topic),
        NewTopic(
            settings.normalized_topic,
            settings.topic_partitions,
            settings.topic_replication_factor,
            config={"max.message.bytes": record_limit},
        ),
    ]


def ensure_topics(settings: CommonSettings, timeout: float = 15.0) -> list[str]:
    """Create the missing pipeline topics; return the names of those created."""
    return create_missing(settings, wanted_topics(settings), timeout)


def retained_topic(settings: CommonSettings, name: str) -> NewTopic:
    """A topic whose records are kept until deleted: raw webhooks and dead letters."""
    # Dead letters are a record plus headers; the raw topic gets the same room, simply.
    keep_forever = {"retention.ms": "-1", "retention.bytes": "-1", "max.message.bytes": str(settings.max_dead_letter_bytes)}
    return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, config=keep_forever)


def create_missing(settings: CommonSettings, topics: list[NewTopic], timeout: float = 15.0) -> list[str]:
    admin = AdminClient(settings.kafka())
    created = []
    futures = admin.create_topics(topics, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
