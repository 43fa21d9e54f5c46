"""Versions of the event schema: each reads the others' data, and the registry sees them as a user's stack would.

The versions live in schemas/versions/AnymailTrackingEvent.v<N>.avsc. Readers
and writers of any two versions resolve by Avro's rules; an event type a
reader's schema lacks reads as the enum's default, "unknown".
"""

import io
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from espstream.embedded import free_port
from espstream.schemas.avro import (
    SCHEMA_PATH,
    EventDeserializer,
    EventSerializer,
    event_to_record,
    registry_unreachable,
)
from espstream.schemas.event import EventType, Provenance, RejectReason, TrackingEvent

VERSIONS_DIR = SCHEMA_PATH.parent / "versions"


def _versions() -> dict[int, str]:
    found = {}
    for path in VERSIONS_DIR.glob("AnymailTrackingEvent.v*.avsc"):
        number = re.fullmatch(r"AnymailTrackingEvent\.v(\d+)\.avsc", path.name)
        assert number, f"{path.name} is not named AnymailTrackingEvent.v<N>.avsc"
        found[int(number[1])] = path.read_text()
    return dict(sorted(found.items()))


VERSIONS = _versions()
V1, V2 = VERSIONS[1], VERSIONS[2]
PAIRS = [(writer, reader) for writer in VERSIONS for reader in VERSIONS]
FIELDS = [field["name"] for field in json.loads(V1)["fields"]]


def event_symbols(schema: str) -> list[str]:
    [event_type] = [field["type"] for field in json.loads(schema)["fields"] if field["name"] == "event_type"]
    return event_type["symbols"]


def tracking_event(**fields: Any) -> TrackingEvent:
    """An event using every field, with values of every shape the schema has."""
    defaults: dict[str, Any] = {
        "event_type": EventType.BOUNCED,
        "timestamp": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "event_id": "evt-1",
        "message_id": "<0100018e@example.com>",
        "recipient": "to@example.com",
        "metadata": {"customer": "42", "seats": 3, "ratio": 0.5, "trial": False, "none": None, "plan": {"tier": "pro"}},
        "tags": ["welcome", "ü"],
        "reject_reason": RejectReason.BOUNCED,
        "description": "Mailbox does not exist",
        "mta_response": "550 5.1.1 no such user",
        "user_agent": "Mozilla/5.0",
        "click_url": "https://example.com/a?b=c",
        "esp_event": {"RecordType": "Bounce", "ID": 42},
        "esp_name": "Postmark",
        "dedupe_id": "9" * 64 + "-0",
        "provenance": Provenance(
            esp="postmark",
            topic="tracking.raw",
            partition=3,
            offset=2**40,
            index=1,
            received_at=datetime(2024, 3, 1, 12, 30, 16, 5, tzinfo=UTC),
            request_id="5f0c6d1e2b3a4c5d",
            normalizer_version="0.1.0",
        ),
    }
    return TrackingEvent(**{**defaults, **fields})


def record(**fields: Any) -> dict[str, Any]:
    return event_to_record(tracking_event(**fields))


def write(schema: str, datum: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(json.loads(schema)), datum)
    return buffer.getvalue()


def read(data: bytes, writer: str, reader: str) -> dict[str, Any]:
    return schemaless_reader(io.BytesIO(data), parse_schema(json.loads(writer)), parse_schema(json.loads(reader)))


def assert_fields_equal(decoded: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(decoded) == sorted(FIELDS)
    for name in FIELDS:
        assert decoded[name] == expected[name], name


def test_the_current_schema_is_the_latest_version():
    assert list(VERSIONS) == list(range(1, len(VERSIONS) + 1))
    assert SCHEMA_PATH.read_text() == VERSIONS[max(VERSIONS)]


def test_the_event_types_are_the_latest_versions_symbols():
    assert [value for name, value in vars(EventType).items() if name.isupper()] == event_symbols(VERSIONS[max(VERSIONS)])


def test_each_version_keeps_the_earlier_symbols_in_their_places():
    # Avro resolves enums by name; unchanged indexes also keep the bytes of an old symbol the same in every version.
    for number in list(VERSIONS)[1:]:
        older, newer = event_symbols(VERSIONS[number - 1]), event_symbols(VERSIONS[number])
        assert newer[: len(older)] == older


def test_version_2_adds_anymails_inbound_event_type():
    assert set(event_symbols(V2)) - set(event_symbols(V1)) == {"inbound"}
    assert EventType.INBOUND == "inbound"
    with pytest.raises(ValueError):  # a version 1 writer has no way to say it
        write(V1, record(event_type="inbound", reject_reason=None))


@pytest.mark.parametrize(("writer", "reader"), PAIRS, ids=[f"v{w} read by v{r}" for w, r in PAIRS])
def test_every_version_reads_every_version_field_by_field(writer: int, reader: int):
    datum = record()

    decoded = read(write(VERSIONS[writer], datum), VERSIONS[writer], VERSIONS[reader])

    assert_fields_equal(decoded, datum)
    assert decoded["metadata"]["plan"] == {"json": '{"tier": "pro"}'}
    assert decoded["timestamp"] == datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("writer", "reader"), PAIRS, ids=[f"v{w} read by v{r}" for w, r in PAIRS])
def test_every_event_type_reads_as_itself_or_as_unknown_where_the_reader_lacks_it(writer: int, reader: int):
    known = event_symbols(VERSIONS[reader])
    for symbol in event_symbols(VERSIONS[writer]):
        datum = record(event_type=symbol)

        decoded = read(write(VERSIONS[writer], datum), VERSIONS[writer], VERSIONS[reader])

        assert decoded["event_type"] == (symbol if symbol in known else "unknown")
        assert_fields_equal(decoded, {**datum, "event_type": decoded["event_type"]})


def test_an_inbound_event_read_with_version_1_is_unknown_and_otherwise_whole():
    datum = record(event_type="inbound", reject_reason=None, description="Inbound message from from@example.com")

    decoded = read(write(V2, datum), V2, V1)

    assert decoded["event_type"] == "unknown"
    assert_fields_equal(decoded, {**datum, "event_type": "unknown"})


# Through the development registry, with confluent-kafka's serializers and espstream's own.


def subject_topic() -> str:
    return f"evolution.{uuid.uuid4().hex[:12]}"


def value_context(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def new_client(url: str) -> SchemaRegistryClient:
    """A client with an empty cache: writer schemas come from the registry."""
    return SchemaRegistryClient({"url": url, "max.retries": 0})


def framed_id(value: bytes) -> int:
    assert value[0] == 0
    return int.from_bytes(value[1:5], "big")


def with_field(schema: str, new_field: dict[str, Any]) -> str:
    parsed = json.loads(schema)
    parsed["fields"].append(new_field)
    return json.dumps(parsed)


def test_version_1_and_2_producers_and_readers_of_either_through_the_registry(registry_url: str):
    topic = subject_topic()
    subject = f"{topic}-value"
    client = new_client(registry_url)
    assert client.get_compatibility() == "BACKWARD"
    bounce = tracking_event()
    inbound = tracking_event(event_type=EventType.INBOUND, reject_reason=None, description="Inbound message")

    # A producer of version 1 registers it and writes.
    old_producer = AvroSerializer(client, V1, to_dict=event_to_record)
    v1_bounce = old_producer(bounce, value_context(topic))
    v1_id = client.get_version(subject, 1).schema_id
    assert framed_id(v1_bounce) == v1_id

    # espstream's serializer registers the current schema, version 2, as the subject's second version.
    serialize = EventSerializer(new_client(registry_url), topic)
    v2_inbound, v2_bounce = serialize(inbound), serialize(bounce)
    assert client.get_versions(subject) == [1, 2]
    v2 = client.get_version(subject, 2)
    assert json.loads(v2.schema.schema_str) == json.loads(V2)
    assert framed_id(v2_inbound) == framed_id(v2_bounce) == v2.schema_id != v1_id

    # A reader still on version 1 reads both producers; the event type it does not know is "unknown".
    old_reader = AvroDeserializer(new_client(registry_url), V1)
    assert_fields_equal(old_reader(v1_bounce, value_context(topic)), event_to_record(bounce))
    assert_fields_equal(old_reader(v2_bounce, value_context(topic)), event_to_record(bounce))
    from_v2 = old_reader(v2_inbound, value_context(topic))
    assert from_v2["event_type"] == "unknown"
    assert_fields_equal(from_v2, {**event_to_record(inbound), "event_type": "unknown"})

    # espstream's deserializer (the current schema) reads both versions' bytes to the events written.
    deserialize = EventDeserializer(new_client(registry_url))
    assert deserialize(v1_bounce, topic) == bounce
    assert deserialize(v2_bounce, topic) == bounce
    assert deserialize(v2_inbound, topic) == inbound


def test_each_version_passes_full_compatibility_with_the_one_before(registry_url: str):
    # FULL: the new version reads the old one's data, and readers of the old one read the new one's.
    subject = f"{subject_topic()}-value"
    client = new_client(registry_url)
    client.set_compatibility(subject, "FULL")

    registered = [client.register_schema_full_response(subject, Schema(text, "AVRO")) for text in VERSIONS.values()]

    assert [version.version for version in registered] == list(VERSIONS)


def test_a_version_that_old_data_cannot_be_read_with_is_refused(registry_url: str):
    topic = subject_topic()
    subject = f"{topic}-value"
    client = new_client(registry_url)
    EventSerializer(client, topic).register()
    # A new field without a default: the events already written have no value for it.
    v3 = with_field(V2, {"name": "campaign", "type": "string"})

    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, Schema(v3, "AVRO"))

    assert refused.value.http_status_code == 409
    assert "campaign" in refused.value.error_message
    assert client.get_versions(subject) == [1]


@pytest.mark.parametrize("ours_registered_before", [True, False], ids=["ours registered before", "ours not yet registered"])
def test_the_serializer_frames_with_its_own_schemas_id_when_the_registry_has_a_newer_version(
    registry_url: str, ours_registered_before: bool
):
    topic = subject_topic()
    subject = f"{topic}-value"
    client = new_client(registry_url)
    client.register_schema(subject, Schema(V1, "AVRO"))
    if ours_registered_before:
        client.register_schema(subject, Schema(V2, "AVRO"))
    # A newer producer's version: an optional field this process does not know.
    v3 = with_field(V2, {"name": "campaign", "type": ["null", "string"], "default": None})
    newer_id = client.register_schema(subject, Schema(v3, "AVRO"))
    assert client.get_latest_version(subject).schema_id == newer_id

    serialize = EventSerializer(new_client(registry_url), topic)
    first, second = serialize(tracking_event()), serialize(tracking_event(event_type=EventType.INBOUND, reject_reason=None))

    ours = new_client(registry_url).lookup_schema(subject, Schema(V2, "AVRO"))
    assert framed_id(first) == framed_id(second) == ours.schema_id != newer_id
    deserialize = EventDeserializer(new_client(registry_url))
    assert deserialize(first, topic) == tracking_event()
    assert deserialize(second, topic) == tracking_event(event_type=EventType.INBOUND, reject_reason=None)
    newest_reader = AvroDeserializer(new_client(registry_url), v3)
    assert newest_reader(second, value_context(topic))["campaign"] is None
    assert newest_reader(second, value_context(topic))["event_type"] == "inbound"


class CountingRegistry(SchemaRegistryClient):
    """A real client that counts its schema-by-id lookups, and asks an address where nothing listens while ``down``."""

    def __init__(self, url: str):
        super().__init__({"url": url, "max.retries": 0})
        self.asked: Counter[int] = Counter()
        self.down = False
        self._nowhere = SchemaRegistryClient({"url": f"http://127.0.0.1:{free_port()}", "max.retries": 0})

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        self.asked[schema_id] += 1
        if self.down:
            return self._nowhere.get_schema(schema_id, *args, **kwargs)
        return super().get_schema(schema_id, *args, **kwargs)


def test_the_deserializer_looks_each_schema_id_up_once_and_reads_version_1_and_2_records(registry_url: str):
    topic = subject_topic()
    client = new_client(registry_url)
    v1_producer, v2_producer = AvroSerializer(client, V1, to_dict=event_to_record), EventSerializer(client, topic)
    events = [tracking_event(event_id=f"evt-{n}", metadata={"n": n}) for n in range(20)]
    values = [v1_producer(e, value_context(topic)) if n % 2 else v2_producer(e) for n, e in enumerate(events)]
    v1_id, v2_id = framed_id(values[1]), framed_id(values[0])
    assert v1_id != v2_id

    registry = CountingRegistry(registry_url)
    deserialize = EventDeserializer(registry)

    assert [deserialize(value, topic) for value in values] == events
    assert registry.asked == {v1_id: 1, v2_id: 1}


def test_a_registry_outage_is_an_outage_until_it_ends_and_unreadable_framings_are_decode_failures(registry_url: str):
    topic = subject_topic()
    value = EventSerializer(new_client(registry_url), topic)(tracking_event())
    registry = CountingRegistry(registry_url)
    deserialize = EventDeserializer(registry)

    registry.down = True
    with pytest.raises(Exception) as outage:
        deserialize(value, topic)
    assert registry_unreachable(outage.value)
    registry.down = False  # what failed was not remembered: the next read asks again
    assert deserialize(value, topic) == tracking_event()
    assert registry.asked == {framed_id(value): 2}

    unknown_id = value[:1] + (2**31 - 1).to_bytes(4, "big") + value[5:]
    for undecodable in (unknown_id, b"\x07" + value[1:], value[:5]):
        with pytest.raises(Exception) as failure:
            deserialize(undecodable, topic)
        assert not registry_unreachable(failure.value)
