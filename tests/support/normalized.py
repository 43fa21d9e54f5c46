"""Writing normalized events straight to a topic, as the normalizer would, for consumer-side tests."""

from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import create_missing
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EventSerializer
from espstream.testing import events_from_webhook
from tests.support.services import own_topics


def fresh_settings(bootstrap_servers: str, registry_url: str, partitions: int = 3) -> dict[str, str]:
    """ESPSTREAM_* variables naming topics no other test uses; the normalized topic is created."""
    env = own_topics(bootstrap_servers, registry_url, partitions)
    settings = CommonSettings(kafka_bootstrap_servers=bootstrap_servers)
    create_missing(settings, [NewTopic(env["ESPSTREAM_NORMALIZED_TOPIC"], partitions, 1)])
    return env


def produce_webhook(
    env: dict[str, str], esp: str, body=None, *, topic: str | None = None, record_headers=None, **options
) -> list[TrackingEvent]:
    """The events of one webhook (see espstream.testing), produced keyed by message id; returns them."""
    events = events_from_webhook(esp, body, **options)
    topic = topic or env["ESPSTREAM_NORMALIZED_TOPIC"]
    serialize = EventSerializer(SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}), topic)
    producer = Producer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], "enable.idempotence": True})
    for event in events:
        key = (event.message_id or event.recipient or "").encode() or None
        producer.produce(topic, serialize(event), key=key, headers=record_headers)
        # One record per produce request: the embedded broker's watermark can stop short of a batch's end.
        producer.flush(10)
    return events
