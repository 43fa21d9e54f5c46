"""`espstream status` as a process on the real broker: real Postmark webhooks in (through normalize()), the
state read back through StatusView and as plain Avro records with their registered schemas."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from espstream.consumers.status import StatusView
from espstream.embedded import EmbeddedBroker
from tests.conftest import settings_from_env
from tests.support.normalized import fresh_settings, produce_webhook
from tests.support.services import Service, eventually, read_topic


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def delivery(message_id: str, recipient: str, when: str) -> dict:
    return {"RecordType": "Delivery", "MessageID": message_id, "Recipient": recipient, "DeliveredAt": when}


def hard_bounce(message_id: str, recipient: str, when: str) -> dict:
    return {"RecordType": "Bounce", "Type": "HardBounce", "ID": 42, "MessageID": message_id, "Email": recipient, "BouncedAt": when}


def opened(message_id: str, recipient: str, when: str) -> dict:
    return {"RecordType": "Open", "MessageID": message_id, "Recipient": recipient, "ReceivedAt": when}


def subscription(message_id: str, recipient: str, when: str, suppress: bool) -> dict:
    return {
        "RecordType": "SubscriptionChange", "MessageID": message_id, "Recipient": recipient, "ChangedAt": when,
        "SuppressSending": suppress, "SuppressionReason": "ManualSuppression" if suppress else None,
    }


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    """Topics of this test's own (the state topics included), and a group of its own."""
    env = fresh_settings(broker.bootstrap_servers, registry_url)
    group = env["ESPSTREAM_NORMALIZER_GROUP"].replace("-normalizer", "-status")
    return {**env, "ESPSTREAM_STATUS_GROUP": group, "ESPSTREAM_KAFKA_SESSION_TIMEOUT_MS": "6000"}


def status_service(env: dict[str, str], tmp_path: Path) -> Service:
    return Service(["status"], env, tmp_path / "status.log").start()


def view_when(env: dict[str, str], check) -> StatusView:
    """A view refreshed until ``check(view)`` holds."""
    view = StatusView(settings_from_env(env))

    def holds():
        view.refresh()
        return check(view)

    eventually(holds, timeout=60)
    return view


def plain_records(env: dict[str, str], topic: str) -> dict[str, dict]:
    """The last value per key, decoded by a plain AvroDeserializer with the writer's registered schema."""
    decode = AvroDeserializer(SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]}))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return {m.key().decode(): decode(m.value(), ctx) for m in read_topic(env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], topic)}


def test_statuses_and_suppressions_from_real_webhooks(env, tmp_path):
    alice, bob, carol = (f"{name}-{uuid.uuid4().hex[:6]}@example.com" for name in ("alice", "bob", "carol"))
    to_alice, to_bob, to_carol = (str(uuid.uuid4()) for _ in range(3))
    service = status_service(env, tmp_path)
    try:
        produce_webhook(env, "postmark", delivery(to_alice, alice, "2026-11-23T16:00:00Z"))
        produce_webhook(env, "postmark", opened(to_alice, alice, "2026-11-23T16:05:00Z"))
        produce_webhook(env, "postmark", hard_bounce(to_bob, bob.upper(), "2026-11-23T16:01:00Z"))
        # Read after the bounce, stamped later: it must not hide it.
        produce_webhook(env, "postmark", delivery(to_bob, bob, "2026-11-23T16:02:00Z"))
        produce_webhook(env, "postmark", opened(to_bob, bob, "2026-11-23T16:03:00Z"))
        # Carol resubscribes; the unsubscribe is stamped earlier and read after it.
        produce_webhook(env, "postmark", subscription(to_carol, carol, "2026-11-23T17:00:00Z", suppress=False))
        produce_webhook(env, "postmark", subscription(to_carol, carol, "2026-11-23T16:30:00Z", suppress=True))

        view = view_when(env, lambda v: (s := v.status("postmark", to_carol)) is not None and s.events == 2
                         and (b := v.status("postmark", to_bob)) is not None and b.events == 3
                         and (a := v.status("postmark", to_alice)) is not None and a.events == 2)
    finally:
        assert service.stop() == 0, service.log()

    alice_status = view.status("postmark", to_alice)
    assert (alice_status.esp, alice_status.message_id, alice_status.recipient) == ("postmark", to_alice, alice)
    assert alice_status.status == "opened"
    assert alice_status.times == {"delivered": at("2026-11-23T16:00:00Z"), "opened": at("2026-11-23T16:05:00Z")}
    assert alice_status.last_event_at == at("2026-11-23T16:05:00Z")
    bob_status = view.status("postmark", to_bob)
    assert bob_status.status == "bounced"
    assert set(bob_status.times) == {"bounced", "delivered", "opened"}
    assert view.statuses_for(alice.upper()) == [alice_status]

    bounced = view.is_suppressed(bob)
    assert (bounced.address, bounced.reason, bounced.at, bounced.esp, bounced.message_id) == (
        bob, "bounced", at("2026-11-23T16:01:00Z"), "postmark", to_bob
    )
    assert view.is_suppressed(carol) is None  # the later subscribe lifted the unsubscribe
    assert view.is_suppressed(alice) is None
    assert [s.address for s in view.suppressions()] == [bob]

    statuses = plain_records(env, env["ESPSTREAM_STATUS_TOPIC"])
    assert statuses[f"postmark:{to_bob}"]["status"] == "bounced"
    assert statuses[f"postmark:{to_alice}"]["times"] == alice_status.times
    suppressions = plain_records(env, env["ESPSTREAM_SUPPRESSIONS_TOPIC"])
    assert suppressions[bob]["reason"] == "bounced"
    assert suppressions[carol]["reason"] is None and suppressions[carol]["subscribed_at"] == at("2026-11-23T17:00:00Z")
    view.close()


def test_duplicates_and_a_restart_give_the_same_state(env, tmp_path):
    alice, message = f"alice-{uuid.uuid4().hex[:6]}@example.com", str(uuid.uuid4())
    service = status_service(env, tmp_path)
    try:
        produce_webhook(env, "postmark", delivery(message, alice, "2026-11-23T16:00:00Z"))
        produce_webhook(env, "postmark", delivery(message, alice, "2026-11-23T16:00:00Z"))  # the ESP's resend
        produce_webhook(env, "postmark", opened(message, alice, "2026-11-23T16:05:00Z"))
        view = view_when(env, lambda v: (s := v.status("postmark", message)) is not None and "opened" in s.times)
    finally:
        assert service.stop() == 0, service.log()
    assert view.status("postmark", message).events == 2

    # While it is down: a complaint. The restarted service reads its state back, then the new event.
    produce_webhook(env, "postmark", {
        "RecordType": "SpamComplaint", "Type": "SpamComplaint", "MessageID": message, "Email": alice,
        "BouncedAt": "2026-11-23T16:10:00Z",
    })
    service = status_service(env, tmp_path)
    try:
        eventually(lambda: view.refresh() and view.status("postmark", message).events == 3, timeout=60)
    finally:
        assert service.stop() == 0, service.log()
    state = view.status("postmark", message)
    assert state.status == "complained"
    assert set(state.times) == {"delivered", "opened", "complained"}
    assert view.is_suppressed(alice.upper()).reason == "complained"

    # A new view, reading every record (the broker may not compact), sees the same last values.
    with StatusView(settings_from_env(env)) as fresh:
        assert fresh.status("postmark", message) == state
        assert fresh.suppressions() == view.suppressions()
    view.close()
