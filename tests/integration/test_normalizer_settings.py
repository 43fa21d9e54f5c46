"""The normalizer service reads its settings: SparkPost's initial opens count as opened only when told so."""

import json
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.topics import ensure_topics
from espstream.schemas.avro import EventDeserializer
from tests.conftest import settings_from_env
from tests.faults.helpers import produce_raw
from tests.support.services import Service, eventually, own_topics, read_topic


def track_event(event_type: str, event_id: str) -> dict:
    return {"msys": {"track_event": {"type": event_type, "event_id": event_id, "rcpt_to": "r@example.com",
                                     "timestamp": "1700000000", "transmission_id": "65832150921904138"}}}  # fmt: skip


BODY = json.dumps([track_event("initial_open", "1"), track_event("open", "2")]).encode()


@pytest.mark.parametrize(("setting", "initial_open"), [("1", "opened"), ("0", "unknown")])
def test_the_initial_open_setting_reaches_the_running_normalizer(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path, setting: str, initial_open: str
) -> None:
    env = {**own_topics(broker.bootstrap_servers, registry_url), "ESPSTREAM_SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED": setting}
    ensure_topics(settings_from_env(env))
    produce_raw(broker.bootstrap_servers, env["ESPSTREAM_RAW_TOPIC"], [("sparkpost", BODY, "application/json", None)])
    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    try:
        topic = env["ESPSTREAM_NORMALIZED_TOPIC"]
        records = eventually(lambda: (found := read_topic(broker.bootstrap_servers, topic)) and len(found) == 2 and found, timeout=60)
    finally:
        normalizer.stop()
    decode = EventDeserializer(SchemaRegistryClient({"url": registry_url}))
    events = sorted((decode(record.value(), topic) for record in records), key=lambda event: event.event_id)
    assert [event.event_type for event in events] == [initial_open, "opened"]


def test_a_normalizer_without_a_batch_wait_normalizes_what_it_fetched_and_what_comes_later(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = {**own_topics(broker.bootstrap_servers, registry_url), "ESPSTREAM_NORMALIZER_BATCH_WAIT_MS": "0"}
    ensure_topics(settings_from_env(env))
    raw_topic, topic = env["ESPSTREAM_RAW_TOPIC"], env["ESPSTREAM_NORMALIZED_TOPIC"]
    produce_raw(broker.bootstrap_servers, raw_topic, [("sparkpost", BODY, "application/json", None)] * 3)
    normalizer = Service(["normalize"], env, tmp_path / "normalizer.log").start()
    try:
        eventually(lambda: len(read_topic(broker.bootstrap_servers, topic)) == 6, timeout=60)
        # Now idle, waiting on its poll: a record arriving later is normalized too.
        later = json.dumps([track_event("open", "later")]).encode()
        produce_raw(broker.bootstrap_servers, raw_topic, [("sparkpost", later, "application/json", None)])
        records = eventually(lambda: (found := read_topic(broker.bootstrap_servers, topic)) and len(found) == 7 and found, timeout=60)
    finally:
        normalizer.stop()
    decode = EventDeserializer(SchemaRegistryClient({"url": registry_url}))
    assert sorted(decode(record.value(), topic).event_id for record in records) == ["1"] * 3 + ["2"] * 3 + ["later"]
