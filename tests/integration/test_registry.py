"""The development schema registry, through real HTTP and a real broker, as confluent-kafka's client sees it."""

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from espstream.embedded import EmbeddedBroker, free_port
from espstream.registry import RegistryServer

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


def record_schema(name: str, *fields: dict[str, Any], namespace: str = "test") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": namespace, "fields": list(fields)}, indent=2)


@dataclass(frozen=True)
class Orders:
    """A subject and versions of its schema no other test uses, so tests can share a registry."""

    subject: str
    namespace: str
    v1: str
    v2: str  # compatible under BACKWARD: the new field has a default
    needs_amount: str  # incompatible under BACKWARD: it cannot read v1 data, which lacks "amount"


@pytest.fixture
def orders() -> Orders:
    unique = uuid.uuid4().hex[:12]
    ns = f"test.t{unique}"
    id_field = {"name": "id", "type": "string"}
    return Orders(
        subject=f"orders-{unique}-value",
        namespace=ns,
        v1=record_schema("Order", id_field, namespace=ns),
        v2=record_schema("Order", id_field, {"name": "note", "type": "string", "default": ""}, namespace=ns),
        needs_amount=record_schema("Order", id_field, {"name": "amount", "type": "long"}, namespace=ns),
    )


@pytest.fixture(scope="module")
def kafka_config(broker: EmbeddedBroker) -> dict[str, Any]:
    return {"bootstrap.servers": broker.bootstrap_servers}


@pytest.fixture
def topic() -> str:
    """A schema topic of the test's own, for tests that need a registry of their own."""
    return f"_schemas-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def registry(kafka_config: dict[str, Any]) -> Iterator[RegistryServer]:
    """One registry for the tests that work on subjects of their own (a registry's first write takes 0.5 s)."""
    with RegistryServer(kafka_config, f"_schemas-{uuid.uuid4().hex[:12]}") as running:
        yield running


def new_client(url: str) -> SchemaRegistryClient:
    """A client with an empty cache: its answers come from the registry."""
    return SchemaRegistryClient({"url": url, "max.retries": 0})


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[SchemaRegistryClient]:
    sr = new_client(registry.url)
    yield sr
    sr.close()


def avro(text: str) -> Schema:
    return Schema(text, "AVRO")


def same_schema(a: str, b: str) -> bool:
    return json.loads(a) == json.loads(b)


def registry_error(call: Any, *args: Any) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as caught:
        call(*args)
    return caught.value


def test_a_registered_schema_is_found_by_every_read_endpoint(
    client: SchemaRegistryClient, registry: RegistryServer, orders: Orders
):
    schema_id = client.register_schema(orders.subject, avro(orders.v1))

    reader = new_client(registry.url)
    assert same_schema(reader.get_schema(schema_id).schema_str, orders.v1)
    assert same_schema(reader.get_schema(schema_id, subject_name=orders.subject).schema_str, orders.v1)
    found = reader.lookup_schema(orders.subject, avro(orders.v1))
    assert (found.subject, found.version, found.schema_id) == (orders.subject, 1, schema_id)
    latest = reader.get_latest_version(orders.subject)
    assert (latest.subject, latest.version, latest.schema_id) == (orders.subject, 1, schema_id)
    assert same_schema(latest.schema.schema_str, orders.v1)
    assert reader.get_version(orders.subject, 1).schema_id == schema_id
    assert reader.get_versions(orders.subject) == [1]
    assert orders.subject in reader.get_subjects()
    assert reader.get_subjects(subject_prefix=orders.subject[:18]) == [orders.subject]
    assert [(v.subject, v.version) for v in reader.get_schema_versions(schema_id)] == [(orders.subject, 1)]
    assert reader.get_subjects_by_schema_id(schema_id) == [orders.subject]
    assert reader.get_schema_types() == ["AVRO"]
    assert same_schema(reader.get_schema_by_guid(latest.guid).schema_str, orders.v1)


def test_registering_the_same_schema_again_returns_the_same_id_and_version(registry: RegistryServer, orders: Orders):
    first = new_client(registry.url).register_schema_full_response(orders.subject, avro(orders.v1))
    # Another client (no cache), and the same schema written with other whitespace.
    compact = json.dumps(json.loads(orders.v1), separators=(",", ":"))
    again = new_client(registry.url).register_schema_full_response(orders.subject, avro(compact))

    assert (again.schema_id, again.version) == (first.schema_id, first.version)
    assert first.version == 1
    assert new_client(registry.url).get_versions(orders.subject) == [1]


def test_the_same_schema_under_another_subject_gets_the_same_id(client: SchemaRegistryClient, orders: Orders):
    schema_id = client.register_schema(orders.subject, avro(orders.v1))
    archive = client.register_schema_full_response(f"archive-{orders.subject}", avro(orders.v1))

    assert archive.schema_id == schema_id
    assert archive.version == 1
    assert client.get_subjects_by_schema_id(schema_id) == [f"archive-{orders.subject}", orders.subject]


def test_a_second_version_of_a_subject(client: SchemaRegistryClient, registry: RegistryServer, orders: Orders):
    v1 = client.register_schema(orders.subject, avro(orders.v1))
    v2 = client.register_schema_full_response(orders.subject, avro(orders.v2))

    assert v2.schema_id != v1
    assert v2.version == 2
    reader = new_client(registry.url)
    assert reader.get_versions(orders.subject) == [1, 2]
    assert reader.get_latest_version(orders.subject).schema_id == v2.schema_id
    assert same_schema(reader.get_version(orders.subject, 1).schema.schema_str, orders.v1)
    assert same_schema(reader.get_version(orders.subject, 2).schema.schema_str, orders.v2)
    # Registering v1 again is not a new version: it is found where it was.
    assert reader.register_schema_full_response(orders.subject, avro(orders.v1)).version == 1


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ('{"type": "record", "name": "Order", "fields": [', "not JSON"),
        ('{"type": "record", "name": "Order"}', "fields"),  # fastavro accepts it, Java Avro does not
        ('{"type": "record", "name": "Order", "fields": [{"name": "x", "type": "money"}]}', "money"),
        ('{"type": "record", "name": "Order", "fields": [{"name": "n", "type": "int", "default": "one"}]}', "one"),
        ('{"type": "enum", "name": "Colour", "symbols": ["red", "red"]}', "unique"),
    ],
)
def test_an_invalid_schema_is_refused_with_the_reason(
    client: SchemaRegistryClient, orders: Orders, schema: str, reason: str
):
    error = registry_error(client.register_schema, orders.subject, avro(schema))

    assert (error.http_status_code, error.error_code) == (422, 42201)
    assert reason in error.error_message
    assert orders.subject not in client.get_subjects()


def test_a_schema_type_other_than_avro_is_refused(client: SchemaRegistryClient, orders: Orders):
    error = registry_error(client.register_schema, orders.subject, Schema('syntax = "proto3";', "PROTOBUF"))

    assert (error.http_status_code, error.error_code) == (422, 42201)
    assert "AVRO only" in error.error_message


def test_unknown_subjects_versions_and_ids_answer_confluents_404_codes(
    client: SchemaRegistryClient, registry: RegistryServer, orders: Orders
):
    schema_id = client.register_schema(orders.subject, avro(orders.v1))
    missing = f"missing-{orders.subject}"
    reader = new_client(registry.url)

    def code(call: Any, *args: Any) -> tuple[int, int]:
        error = registry_error(call, *args)
        return error.http_status_code, error.error_code

    assert code(reader.get_latest_version, missing) == (404, 40401)
    assert code(reader.get_versions, missing) == (404, 40401)
    assert code(reader.get_version, missing, 1) == (404, 40401)
    assert code(reader.lookup_schema, missing, avro(orders.v1)) == (404, 40401)
    assert code(reader.get_version, orders.subject, 2) == (404, 40402)
    assert code(reader.get_schema, 10**6) == (404, 40403)
    assert code(reader.get_schema_versions, 10**6) == (404, 40403)
    assert code(reader.lookup_schema, orders.subject, avro(orders.v2)) == (404, 40403)
    assert code(reader.get_version, orders.subject, 0) == (422, 42202)
    assert reader.get_schema(schema_id) is not None


def test_errors_are_confluent_json_bodies(registry: RegistryServer, orders: Orders):
    for response in (
        httpx.get(f"{registry.url}/no/such/path"),
        httpx.delete(f"{registry.url}/subjects/{orders.subject}/versions"),
        httpx.get(f"{registry.url}/schemas/ids/1000000"),
        httpx.get(f"{registry.url}/subjects/{orders.subject}/versions/first"),
        httpx.post(f"{registry.url}/subjects/{orders.subject}/versions", json={"schemaType": "AVRO"}),
    ):
        assert response.headers["content-type"] == MEDIA_TYPE
        body = response.json()
        assert set(body) == {"error_code", "message"}
        assert str(body["error_code"]).startswith(str(response.status_code))

    assert httpx.get(f"{registry.url}/no/such/path").json() == {"error_code": 404, "message": "HTTP 404 Not Found"}


def test_backward_compatibility_is_enforced_until_the_subject_is_set_to_none(
    client: SchemaRegistryClient, orders: Orders
):
    assert client.get_compatibility() == "BACKWARD"
    client.register_schema(orders.subject, avro(orders.v1))

    assert client.test_compatibility(orders.subject, avro(orders.v2)) is True
    assert client.test_compatibility(orders.subject, avro(orders.needs_amount)) is False
    error = registry_error(client.register_schema, orders.subject, avro(orders.needs_amount))
    assert (error.http_status_code, error.error_code) == (409, 409)
    assert "amount" in error.error_message
    assert client.get_versions(orders.subject) == [1]

    assert client.set_compatibility(orders.subject, "NONE") == {"compatibility": "NONE"}
    assert client.get_compatibility(orders.subject) == "NONE"
    assert client.get_compatibility() == "BACKWARD"
    assert client.register_schema_full_response(orders.subject, avro(orders.needs_amount)).version == 2


@pytest.mark.parametrize(
    ("default", "level", "accepted"),
    [
        ("unknown", "BACKWARD", True),
        ("unknown", "FULL", True),  # an old reader reads the new symbol as the default
        (None, "BACKWARD", True),  # BACKWARD asks only that the new schema reads the old data
        (None, "FULL", False),  # an old reader has nothing to read the new symbol as
    ],
)
def test_an_enum_symbol_added_is_readable_by_old_readers_only_when_the_enum_has_a_default(
    client: SchemaRegistryClient, orders: Orders, default: str | None, level: str, accepted: bool
):
    def with_states(*symbols: str) -> str:
        enum = {"type": "enum", "name": "State", "symbols": list(symbols)}
        if default is not None:
            enum["default"] = default
        return record_schema("Order", {"name": "state", "type": enum}, namespace=orders.namespace)

    client.set_compatibility(orders.subject, level)
    client.register_schema(orders.subject, avro(with_states("open", "unknown")))
    added = avro(with_states("open", "unknown", "held"))

    if accepted:
        assert client.register_schema_full_response(orders.subject, added).version == 2
    else:
        error = registry_error(client.register_schema, orders.subject, added)
        assert (error.http_status_code, error.error_code) == (409, 409)
        assert "MISSING_ENUM_SYMBOLS" in error.error_message
        assert client.get_versions(orders.subject) == [1]


def test_a_compatibility_level_must_be_one_of_confluents(client: SchemaRegistryClient):
    error = registry_error(client.set_compatibility, None, "SOMETIMES")

    assert (error.http_status_code, error.error_code) == (422, 42203)
    assert client.get_compatibility() == "BACKWARD"


def test_concurrent_registrations_get_distinct_ids_and_versions(
    client: SchemaRegistryClient, registry: RegistryServer, orders: Orders
):
    client.set_compatibility(orders.subject, "NONE")
    id_field = {"name": "id", "type": "string"}
    schemas = [record_schema(f"Thing{n}", id_field, namespace=orders.namespace) for n in range(8)]
    results: dict[int, Any] = {}

    def register(n: int) -> None:
        results[n] = new_client(registry.url).register_schema_full_response(orders.subject, avro(schemas[n]))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(len(schemas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.version for r in results.values()) == list(range(1, 9))
    assert len({r.schema_id for r in results.values()}) == 8
    reader = new_client(registry.url)
    for n, registered in results.items():
        assert same_schema(reader.get_schema(registered.schema_id).schema_str, schemas[n])
        assert reader.get_version(orders.subject, registered.version).schema_id == registered.schema_id


def test_ids_versions_and_levels_survive_a_restart(kafka_config: dict[str, Any], topic: str, orders: Orders):
    archive = f"archive-{orders.subject}"
    with RegistryServer(kafka_config, topic) as first:
        sr = new_client(first.url)
        v1 = sr.register_schema(orders.subject, avro(orders.v1))
        v2 = sr.register_schema(orders.subject, avro(orders.v2))
        archived = sr.register_schema(archive, avro(orders.v1))
        sr.set_compatibility(archive, "NONE")

    with RegistryServer(kafka_config, topic) as second:
        sr = new_client(second.url)
        # The first answers already hold everything: the state was read before the port opened.
        assert sr.get_subjects() == [archive, orders.subject]
        assert sr.get_versions(orders.subject) == [1, 2]
        assert sr.get_version(orders.subject, 1).schema_id == v1
        assert sr.get_latest_version(orders.subject).schema_id == v2
        assert sr.lookup_schema(archive, avro(orders.v1)).schema_id == archived == v1
        assert same_schema(sr.get_schema(v2).schema_str, orders.v2)
        assert sr.get_compatibility(archive) == "NONE"
        # New ids continue after the old ones, and versions after the old versions.
        v3 = sr.register_schema_full_response(archive, avro(orders.needs_amount))
        assert (v3.schema_id, v3.version) == (max(v1, v2) + 1, 2)


def test_each_change_is_a_readable_json_record_in_the_topic(
    kafka_config: dict[str, Any], topic: str, orders: Orders
):
    with RegistryServer(kafka_config, topic) as own:
        sr = new_client(own.url)
        schema_id = sr.register_schema(orders.subject, avro(orders.v1))
        sr.set_compatibility(None, "FULL")

    consumer = Consumer({**kafka_config, "group.id": "test-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        messages = [consumer.poll(10) for _ in range(2)]
    finally:
        consumer.close()

    key, value = json.loads(messages[0].key()), json.loads(messages[0].value())
    assert key == {"keytype": "SCHEMA", "subject": orders.subject, "version": 1, "magic": 1}
    assert value["subject"] == orders.subject and value["version"] == 1 and value["id"] == schema_id
    assert same_schema(value["schema"], orders.v1)
    assert json.loads(messages[1].key()) == {"keytype": "CONFIG", "subject": None, "magic": 0}
    assert json.loads(messages[1].value()) == {"compatibilityLevel": "FULL"}


def test_the_registry_does_not_start_without_kafka(topic: str):
    nowhere = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}

    with pytest.raises(RuntimeError, match="failed to start"):
        RegistryServer(nowhere, topic, startup_timeout=1.0).start()


def test_without_an_acknowledgement_a_change_fails_and_reads_go_on(tmp_path: Path, orders: Orders):
    with EmbeddedBroker(free_port(), log_path=tmp_path / "tansu.log") as own_broker:
        config = {"bootstrap.servers": own_broker.bootstrap_servers}
        with RegistryServer(config, "_schemas", ack_timeout=1.0) as own:
            sr = new_client(own.url)
            schema_id = sr.register_schema(orders.subject, avro(orders.v1))
            own_broker.stop()

            error = registry_error(sr.register_schema, orders.subject, avro(orders.v2))
            assert error.http_status_code == 500
            assert error.error_code in (50001, 50002)
            assert sr.get_versions(orders.subject) == [1]
            assert new_client(own.url).get_latest_version(orders.subject).schema_id == schema_id
