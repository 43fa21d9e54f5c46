"""TrackingEvent <-> Confluent-framed Avro, through the development schema registry over real HTTP."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from espstream.schemas.avro import EventDeserializer, EventSerializer, schema_str
from espstream.schemas.event import EventType, Provenance, RejectReason, TrackingEvent

TOPIC = f"tracking.normalized.{uuid.uuid4().hex[:12]}"
INDIA = timezone(timedelta(hours=5, minutes=30))
LOS_ANGELES = ZoneInfo("America/Los_Angeles")

EVENT_TYPES = [value for name, value in vars(EventType).items() if name.isupper()]
REJECT_REASONS = [value for name, value in vars(RejectReason).items() if name.isupper()]

PROVENANCE = Provenance(
    esp="postmark",
    topic="tracking.raw",
    partition=3,
    offset=2**40,
    index=1,
    received_at=datetime(2024, 3, 1, 12, 30, 16, 5, tzinfo=UTC),
    request_id="5f0c6d1e2b3a4c5d",
    normalizer_version="0.1.0",
)


def tracking_event(**fields: Any) -> TrackingEvent:
    defaults: dict[str, Any] = {
        "event_type": EventType.DELIVERED,
        "timestamp": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "event_id": "evt-1",
        "message_id": "<0100018e@example.com>",
        "recipient": "to@example.com",
        "esp_event": {"RecordType": "Delivery", "MessageID": "0100018e"},
        "esp_name": "Postmark",
        "dedupe_id": "9" * 64,
        "provenance": PROVENANCE,
    }
    return TrackingEvent(**{**defaults, **fields})


METADATA = {
    "str": "order-42",
    "int": 42,
    "negative": -7,
    "int64 max": 2**63 - 1,
    "int64 min": -(2**63),
    "float": 1.5,
    "integral float": 3.0,
    "tiny": 1e-300,
    "true": True,
    "false": False,
    "none": None,
    "nested": {"a": [1, {"b": None, "c": "ü"}], "big": 2**70},
    "list": [1, "two", 3.0, False],
    "huge": 2**64 + 1,
    "huge negative": -(2**63) - 1,
    "clé ünïcödé": "çødé ☃ 𝄞 日本",
}

ROUND_TRIPS: dict[str, TrackingEvent] = {
    **{f"event type {t}": tracking_event(event_type=t) for t in EVENT_TYPES},
    **{
        f"reject reason {r}": tracking_event(event_type=EventType.BOUNCED, reject_reason=r, mta_response="550 5.1.1")
        for r in REJECT_REASONS
    },
    "no timestamp": tracking_event(timestamp=None),
    "timestamp in +05:30": tracking_event(timestamp=datetime(2024, 3, 1, 18, 0, 15, 999999, tzinfo=INDIA)),
    "timestamp in Los Angeles, DST": tracking_event(timestamp=datetime(2024, 7, 4, 9, 15, 1, 1, tzinfo=LOS_ANGELES)),
    "received_at in +05:30, none": tracking_event(
        provenance=replace(PROVENANCE, received_at=datetime(2024, 3, 1, 18, 0, tzinfo=INDIA), request_id=None)
    ),
    "received_at unknown": tracking_event(provenance=replace(PROVENANCE, received_at=None)),
    "metadata of every kind": tracking_event(metadata=METADATA),
    "tags": tracking_event(tags=["welcome", "bienvenüe", "ようこそ", ""]),
    "every optional string": tracking_event(
        event_type=EventType.CLICKED,
        description="Clické — 𝄞",
        mta_response="250 2.0.0 OK",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Ünï",
        click_url="https://example.com/ü?a=1&b=2",
    ),
    "no optional string": tracking_event(
        event_id=None, message_id=None, recipient=None, esp_event=None, dedupe_id="", esp_name=""
    ),
    "esp_event a list": tracking_event(esp_event=[{"event": "delivered"}, {"event": "open", "n": 2**64}]),
    "esp_event a form": tracking_event(
        esp_event={"event": ["bounced"], "recipient": ["to@example.com"], "tag": ["a", "b"]}
    ),
    "esp_event with lone surrogates": tracking_event(
        esp_event={"subject": "half an emoji \ud83d", "\udcff key": ["\ud800", "ok"]}
    ),
}


@pytest.fixture(scope="module")
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient({"url": registry_url})
    yield sr
    sr.close()


@pytest.fixture(scope="module")
def serialize(client: SchemaRegistryClient) -> EventSerializer:
    return EventSerializer(client, TOPIC)


@pytest.fixture(scope="module")
def deserialize(registry_url: str) -> EventDeserializer:
    # A client of its own: the writer's schema comes from the registry, not from the serializer's cache.
    return EventDeserializer(SchemaRegistryClient({"url": registry_url}))


def as_json(value: Any) -> str:
    """JSON text, which tells True from 1 and 3.0 from 3 where == does not."""
    return json.dumps(value, sort_keys=True)


def registered_id(registry_url: str, subject: str) -> int:
    response = httpx.get(f"{registry_url}/subjects/{subject}/versions/latest")
    response.raise_for_status()
    return response.json()["id"]


def test_the_event_types_and_reasons_are_the_schemas_symbols():
    schema = json.loads(schema_str())
    fields = {field["name"]: field["type"] for field in schema["fields"]}

    assert EVENT_TYPES == fields["event_type"]["symbols"]
    assert REJECT_REASONS == fields["reject_reason"][1]["symbols"]


@pytest.mark.parametrize("event", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_an_event_decodes_to_an_equal_event(
    serialize: EventSerializer, deserialize: EventDeserializer, event: TrackingEvent
):
    decoded = deserialize(serialize(event), TOPIC)

    assert decoded == event
    assert as_json(decoded.metadata) == as_json(event.metadata)
    assert as_json(decoded.esp_event) == as_json(event.esp_event)
    for instant in (decoded.timestamp, decoded.provenance.received_at):
        assert instant is None or instant.utcoffset() == timedelta(0)


def test_the_bytes_are_confluent_framed_with_the_registered_id(serialize: EventSerializer, registry_url: str):
    framed = serialize(tracking_event())

    assert framed[0] == 0
    assert int.from_bytes(framed[1:5], "big") == registered_id(registry_url, f"{TOPIC}-value")


def test_register_makes_the_subject_before_any_event(client: SchemaRegistryClient, registry_url: str):
    topic = f"{TOPIC}.early"
    serializer = EventSerializer(client, topic)

    serializer.register()

    schema_id = registered_id(registry_url, f"{topic}-value")
    assert int.from_bytes(serializer(tracking_event())[1:5], "big") == schema_id


def test_an_outside_client_decodes_the_bytes_without_espstream(serialize: EventSerializer, registry_url: str):
    event = tracking_event(
        event_type=EventType.BOUNCED,
        reject_reason=RejectReason.BOUNCED,
        timestamp=datetime(2024, 3, 1, 18, 0, 15, 7, tzinfo=INDIA),
        metadata={"plan": "pro", "seats": 3, "limits": {"daily": 10}, "huge": 2**64},
        tags=["ñ"],
    )
    framed = serialize(event)
    # What an analytics job would do: the registry's URL, the topic, nothing else.
    plain = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))

    record = plain(framed, SerializationContext(TOPIC, MessageField.VALUE))

    assert record["event_type"] == "bounced"
    assert record["reject_reason"] == "bounced"
    assert record["timestamp"] == event.timestamp
    assert record["metadata"] == {
        "plan": "pro",
        "seats": 3,
        "limits": {"json": '{"daily": 10}'},
        "huge": {"json": str(2**64)},
    }
    assert record["tags"] == ["ñ"]
    assert json.loads(record["esp_event"]) == event.esp_event
    assert record["provenance"]["offset"] == PROVENANCE.offset


def test_an_event_type_outside_the_schema_fails_to_serialize_saying_so(serialize: EventSerializer):
    with pytest.raises(ValueError) as caught:
        serialize(tracking_event(event_type="resubscribed"))

    assert "event_type" in str(caught.value)
    assert "resubscribed" in str(caught.value)


def test_a_reject_reason_outside_the_schema_fails_to_serialize_saying_so(serialize: EventSerializer):
    with pytest.raises(ValueError) as caught:
        serialize(tracking_event(event_type=EventType.BOUNCED, reject_reason="mailbox_full"))

    assert "reject_reason" in str(caught.value)
    assert "mailbox_full" in str(caught.value)
