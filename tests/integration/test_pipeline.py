"""End to end through real processes: HTTP gateway -> broker -> normalizer -> Avro -> receivers."""

import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from espstream.consumers.runner import TrackingConsumer
from espstream.consumers.settings import ConsumerSettings
from espstream.consumers.signals import Signal
from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import TrackingEvent
from tests.conftest import settings_from_env
from tests.support.services import Service, count_records, eventually, own_topics, read_topic


@dataclass
class Pipeline:
    env: dict[str, str]
    url: str  # the gateway's base URL
    auth: tuple[str, str]
    bootstrap_servers: str
    normalizer: Service
    tmp: Path

    def topic(self, name: str) -> str:
        return self.env[f"ESPSTREAM_{name.upper()}_TOPIC"]

    def post(self, esp: str, body, content_type: str = "application/json", headers=None, **kwargs) -> httpx.Response:
        kwargs.setdefault("auth", self.auth)
        return httpx.post(
            f"{self.url}/webhooks/{esp}/tracking/",
            content=body,
            headers={"Content-Type": content_type, **(headers or {})},
            timeout=30,
            **kwargs,
        )

    def restart_normalizer(self) -> None:
        self.normalizer = Service(["normalize"], self.env, self.tmp / "normalizer.log").start()


def pipeline_env(bootstrap_servers: str, registry_url: str) -> dict[str, str]:
    user, password = "esp", secrets.token_urlsafe(16)
    return {
        **own_topics(bootstrap_servers, registry_url),
        "ESPSTREAM_WEBHOOK_SECRET": f"{user}:{password}",
        "ESPSTREAM_GATEWAY_HOST": "127.0.0.1",
        "ESPSTREAM_GATEWAY_PORT": str(free_port()),
    }


@pytest.fixture(scope="module")
def pipeline(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    env = pipeline_env(broker.bootstrap_servers, registry_url)
    ensure_topics(settings_from_env(env))
    tmp = tmp_path_factory.mktemp("pipeline")
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    gateway = Service(["gateway"], env, tmp / "gateway.log").start(port)
    normalizer = Service(["normalize"], env, tmp / "normalizer.log").start()
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    running = Pipeline(env, f"http://127.0.0.1:{port}", (user, password), broker.bootstrap_servers, normalizer, tmp)
    yield running
    gateway.stop()
    running.normalizer.stop()


def postmark_delivery(message_id: str, recipient: str = "alice@example.com") -> bytes:
    return json.dumps(
        {
            "RecordType": "Delivery",
            "ServerID": 23,
            "MessageStream": "outbound",
            "MessageID": message_id,
            "Recipient": recipient,
            "Tag": "welcome",
            "DeliveredAt": "2026-11-23T16:33:54.9070259Z",
            "Details": "Test delivery webhook details",
            "Metadata": {"customer": "42", "plan": "ünïcode"},
        }
    ).encode()


class ReceiverThread:
    """A consumer group member in this process whose receiver collects events."""

    def __init__(self, pipeline: Pipeline, group: str):
        self.events: list[tuple[TrackingEvent, dict]] = []
        signal = Signal()
        signal.connect(self.receive)
        settings = ConsumerSettings(**settings_from_env(pipeline.env).model_dump())
        self.runner = TrackingConsumer(group, signal, settings)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)

    def receive(self, sender: object, event: TrackingEvent, esp_name: str, **kwargs: object) -> None:
        self.events.append((event, {"esp_name": esp_name, **kwargs}))

    def __enter__(self) -> "ReceiverThread":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.stop()
        self.thread.join(30)


def test_webhook_reaches_a_receiver_as_the_normalized_event(pipeline: Pipeline) -> None:
    message_id = str(uuid.uuid4())
    body = postmark_delivery(message_id)

    with ReceiverThread(pipeline, f"receivers-{message_id}") as receiver:
        response = pipeline.post("postmark", body)
        assert response.status_code == 200
        received = eventually(lambda: [e for e in receiver.events if e[0].message_id == message_id])

    event, kwargs = received[0]
    assert event.event_type == "delivered"
    assert event.recipient == "alice@example.com"
    assert event.timestamp == datetime(2026, 11, 23, 16, 33, 54, 907025, tzinfo=UTC)
    assert event.tags == ["welcome"]
    assert event.metadata == {"customer": "42", "plan": "ünïcode"}
    assert event.esp_event == json.loads(body)
    assert kwargs["esp_name"] == "Postmark"
    assert kwargs["dedupe_id"] == event.dedupe_id
    assert event.provenance is not None
    assert event.provenance.esp == "postmark"
    assert event.provenance.topic == pipeline.topic("raw")
    assert event.provenance.request_id == response.headers["X-Request-Id"]


def test_normalized_records_decode_with_a_plain_avro_deserializer(pipeline: Pipeline) -> None:
    message_id = str(uuid.uuid4())
    assert pipeline.post("postmark", postmark_delivery(message_id)).status_code == 200
    topic = pipeline.topic("normalized")

    def find() -> list:
        return [m for m in read_topic(pipeline.bootstrap_servers, topic) if m.key() == message_id.encode()]

    [message] = eventually(find)
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": pipeline.env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}))
    record = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
    assert record["event_type"] == "delivered"
    assert record["message_id"] == message_id
    assert record["esp_name"] == "Postmark"
    assert record["metadata"] == {"customer": "42", "plan": "ünïcode"}
    assert json.loads(record["esp_event"])["MessageID"] == message_id


def test_a_body_that_is_not_json_is_dead_lettered_and_later_webhooks_flow(pipeline: Pipeline) -> None:
    body = b"this is {not json " + uuid.uuid4().hex.encode()
    response = pipeline.post("postmark", body)
    assert response.status_code == 200

    def dead_letters() -> list:
        return [m for m in read_topic(pipeline.bootstrap_servers, pipeline.topic("dlq")) if m.value() == body]

    [letter] = eventually(dead_letters)
    headers = dict(letter.headers())
    assert headers["dlq-stage"] == b"normalize"
    assert headers["dlq-error-class"] == b"MalformedPayload"
    assert b"not valid JSON" in headers["dlq-error-message"]
    assert headers["dlq-source-topic"] == pipeline.topic("raw").encode()
    assert headers["request-id"] == response.headers["X-Request-Id"].encode()
    assert headers["esp"] == b"postmark"

    message_id = str(uuid.uuid4())
    assert pipeline.post("postmark", postmark_delivery(message_id)).status_code == 200
    eventually(lambda: [m for m in read_topic(pipeline.bootstrap_servers, pipeline.topic("normalized")) if m.key() == message_id.encode()])


@pytest.mark.parametrize(
    "auth",
    [None, ("esp", "wrong-password"), ("nobody", "x")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_missing_or_wrong_basic_auth_is_401_and_writes_nothing(pipeline: Pipeline, auth) -> None:
    raw_topic = pipeline.topic("raw")
    before = count_records(pipeline.bootstrap_servers, raw_topic)
    response = pipeline.post("postmark", postmark_delivery(str(uuid.uuid4())), auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert count_records(pipeline.bootstrap_servers, raw_topic) == before


def test_normalizer_killed_mid_stream_loses_no_event(pipeline: Pipeline) -> None:
    message_ids = [str(uuid.uuid4()) for _ in range(400)]
    with httpx.Client(auth=pipeline.auth, timeout=30) as client:
        for number, message_id in enumerate(message_ids):
            response = client.post(
                f"{pipeline.url}/webhooks/postmark/tracking/",
                content=postmark_delivery(message_id),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 200
            if number == 200:
                pipeline.normalizer.kill()
    pipeline.restart_normalizer()

    def all_present() -> list:
        records = read_topic(pipeline.bootstrap_servers, pipeline.topic("normalized"))
        wanted = [m for m in records if m.key() and m.key().decode() in set(message_ids)]
        return wanted if {m.key().decode() for m in wanted} == set(message_ids) else []

    records = eventually(all_present, timeout=60, interval=1.0)
    decode = AvroDeserializer(SchemaRegistryClient({"url": pipeline.env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}))
    dedupe_ids: dict[str, set[str]] = {}
    for message in records:
        record = decode(message.value(), SerializationContext(message.topic(), MessageField.VALUE))
        dedupe_ids.setdefault(record["message_id"], set()).add(record["dedupe_id"])
    # A record normalized twice (the kill came after its produce, before its commit)
    # is the same event twice: one dedupe id per webhook.
    assert all(len(ids) == 1 for ids in dedupe_ids.values())


def test_a_failing_receiver_is_retried_alone_then_dead_lettered_and_events_keep_flowing(pipeline: Pipeline) -> None:
    group = f"flaky-{uuid.uuid4().hex[:8]}"
    poison, later = str(uuid.uuid4()), str(uuid.uuid4())
    calls: dict[str, list[str]] = {"steady": [], "failing": []}

    def steady(sender, event, esp_name, **kwargs):
        calls["steady"].append(event.message_id)

    def failing(sender, event, esp_name, **kwargs):
        calls["failing"].append(event.message_id)
        if event.message_id == poison:
            raise RuntimeError("receiver bug")

    signal = Signal()
    signal.connect(steady)
    signal.connect(failing)
    settings = ConsumerSettings(
        **settings_from_env(pipeline.env).model_dump(), consumer_max_attempts=3, consumer_retry_backoff_seconds=0.05
    )
    runner = TrackingConsumer(group, signal, settings)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        assert pipeline.post("postmark", postmark_delivery(poison)).status_code == 200
        assert pipeline.post("postmark", postmark_delivery(later)).status_code == 200
        # The two webhooks may land on different partitions, read in either order: wait for both.
        eventually(lambda: later in calls["steady"] and later in calls["failing"] and calls["failing"].count(poison) == 3)
    finally:
        runner.stop()
        thread.join(30)

    assert calls["failing"].count(poison) == 3
    assert calls["steady"].count(poison) == 1  # succeeded once, not re-run for its sibling
    [letter] = [m for m in read_topic(pipeline.bootstrap_servers, settings.group_dlq_topic(group))]
    headers = dict(letter.headers())
    assert headers["dlq-receiver"] == f"{__name__}.{failing.__qualname__}".encode()
    assert headers["dlq-error-class"] == b"RuntimeError"
    assert headers["dlq-attempts"] == b"3"
    assert letter.key() == poison.encode()


def test_espstream_consume_calls_the_receivers_of_a_module(pipeline: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    env = {**pipeline.env, "RECEIVED_EVENTS_FILE": str(out)}
    consumer = Service(["consume", "tests.support.receivers_for_cli", "--group", f"cli-{uuid.uuid4().hex[:8]}"], env, tmp_path / "consume.log").start()
    try:
        message_id = str(uuid.uuid4())
        assert pipeline.post("postmark", postmark_delivery(message_id)).status_code == 200
        expected = {"message_id": message_id, "event_type": "delivered", "esp_name": "Postmark"}

        def received() -> bool:
            return out.exists() and expected in [json.loads(line) for line in out.read_text().splitlines()]

        eventually(received)
    finally:
        assert consumer.stop() == 0


def test_normalizer_stops_on_sigterm_after_committing_what_it_did(pipeline: Pipeline) -> None:
    message_id = str(uuid.uuid4())
    assert pipeline.post("postmark", postmark_delivery(message_id)).status_code == 200
    eventually(lambda: [m for m in read_topic(pipeline.bootstrap_servers, pipeline.topic("normalized")) if m.key() == message_id.encode()])

    assert pipeline.normalizer.stop() == 0  # SIGTERM
    raw_topic = pipeline.topic("raw")
    consumer = Consumer({"bootstrap.servers": pipeline.bootstrap_servers, "group.id": pipeline.env["ESPSTREAM_NORMALIZER_GROUP"]})
    try:
        partitions = consumer.list_topics(raw_topic, timeout=10).topics[raw_topic].partitions
        committed = consumer.committed([TopicPartition(raw_topic, p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    ends: dict[int, int] = {}
    for m in read_topic(pipeline.bootstrap_servers, raw_topic):
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
    assert {tp.partition: tp.offset for tp in committed if tp.partition in ends} == ends
    pipeline.restart_normalizer()


def test_a_record_without_value_on_the_normalized_topic_is_dead_lettered_not_fatal(pipeline: Pipeline) -> None:
    from confluent_kafka import Producer

    group = f"tombstone-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": pipeline.bootstrap_servers})
    producer.produce(pipeline.topic("normalized"), None, key=b"tombstone")
    producer.flush(10)
    message_id = str(uuid.uuid4())
    with ReceiverThread(pipeline, group) as receiver:
        assert pipeline.post("postmark", postmark_delivery(message_id)).status_code == 200
        eventually(lambda: [e for e, _ in receiver.events if e.message_id == message_id])
        dlq_topic = receiver.runner.dlq_topic
    [letter] = [m for m in read_topic(pipeline.bootstrap_servers, dlq_topic) if m.key() == b"tombstone"]
    assert dict(letter.headers())["dlq-receiver"] == b"(decode)"
