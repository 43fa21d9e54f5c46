"""Fuzzed raw records through a running normalizer: each one has its outcome, and the service goes on.

Records are written straight to the raw topic (as a gateway of another version,
a replay tool or a person with kcat could write them): mutated and random
bodies of every ESP, and records whose headers are missing or garbled. A real
``espstream normalize`` process reads them; each record must come out as the
code path of the service says (``RecordNormalizer`` run here on the records
read back): its events, in order, or exactly one dead letter with the stage
and the reason. A good webhook written after them still comes out.
"""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from espstream.embedded import EmbeddedBroker
from espstream.normalizer.errors import NormalizeError
from espstream.normalizer.esps import PARSERS
from espstream.normalizer.records import RecordNormalizer
from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import raw
from espstream.schemas.avro import EventDeserializer, EventSerializer
from tests.conftest import settings_from_env
from tests.support.fuzz.strategies import Request, mutated_requests, random_requests
from tests.support.services import Service, eventually, own_topics, read_topic

RECEIVED_AT = b"2024-05-06T07:08:09.123456+00:00"
GOOD_WEBHOOK = {
    "RecordType": "Delivery",
    "MessageID": "fuzz-sentinel",
    "Recipient": "alice@example.com",
    "DeliveredAt": "2026-11-23T16:33:54.9070259Z",
    "Details": "delivered after every fuzzed record",
}
# Headers a record may have instead of the gateway's: (name of the case, headers).
GARBLED_HEADERS: list[tuple[str, raw.Headers]] = [
    ("no headers", []),
    ("no esp", [(raw.CONTENT_TYPE, b"application/json"), (raw.RECEIVED_AT, RECEIVED_AT)]),
    ("unknown esp", [(raw.ESP, b"pigeon_post"), (raw.RECEIVED_AT, RECEIVED_AT)]),
    ("esp not UTF-8", [(raw.ESP, b"postmark\xff\xfe"), (raw.RECEIVED_AT, RECEIVED_AT)]),
    ("content type not UTF-8", [(raw.ESP, b"postmark"), (raw.CONTENT_TYPE, b"application/\xc3(json")]),
    ("received-at garbled", [(raw.ESP, b"postmark"), (raw.RECEIVED_AT, b"yesterday at noon")]),
    ("header value null", [(raw.ESP, b"postmark"), (raw.REQUEST_ID, None), ("http-user-agent", None)]),
    ("http header not UTF-8", [(raw.ESP, b"postmark"), ("http-user-agent", b"\x80\x81")]),
]


@dataclass
class Normalizer:
    env: dict[str, str]
    bootstrap_servers: str
    service: Service

    def topic(self, name: str) -> str:
        return self.env[f"ESPSTREAM_{name.upper()}_TOPIC"]


@pytest.fixture(scope="module")
def running(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Normalizer]:
    # One partition: the good webhook is read after every fuzzed record.
    env = own_topics(broker.bootstrap_servers, registry_url, partitions=1)
    ensure_topics(settings_from_env(env))
    log: Path = tmp_path_factory.mktemp("fuzz-normalizer") / "normalizer.log"
    service = Service(["normalize"], env, log).start()
    yield Normalizer(env, broker.bootstrap_servers, service)
    service.stop()


def _gateway_headers(slug: str, request: Request) -> raw.Headers:
    headers: raw.Headers = [(raw.ESP, slug.encode()), (raw.RECEIVED_AT, RECEIVED_AT), (raw.REQUEST_ID, b"fuzz")]
    if request.content_type is not None:
        headers.append((raw.CONTENT_TYPE, request.content_type.encode("utf-8", "surrogatepass")))
    headers += [(f"http-{name.lower()}", value.encode("utf-8", "surrogatepass")) for name, value in request.headers.items()]
    return headers


@st.composite
def fuzzed_records(draw: st.DrawFn) -> tuple[bytes | None, raw.Headers]:
    slug = draw(st.sampled_from(sorted(PARSERS)))
    request = draw(st.one_of(mutated_requests(slug), random_requests()))
    return request.body, _gateway_headers(slug, request)


def garbled_records() -> list[tuple[bytes | None, raw.Headers]]:
    body = json.dumps({**GOOD_WEBHOOK, "MessageID": "garbled"}).encode()
    return [(None, [(raw.ESP, b"postmark")])] + [(body, headers) for _, headers in GARBLED_HEADERS]


def _produce(bootstrap_servers: str, topic: str, records: list[tuple[bytes | None, raw.Headers]]) -> set[int]:
    """Write ``records`` in order; their offsets."""
    offsets: set[int] = set()
    # As the gateway's producer: room for any body the gateway accepts.
    producer = Producer(
        {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "message.max.bytes": CommonSettings().max_record_bytes}
    )
    for value, headers in records:
        producer.produce(topic, value, headers=headers, partition=0, on_delivery=lambda e, m: offsets.add(m.offset()))
    assert producer.flush(30) == 0, "the raw records were not all acknowledged"
    assert len(offsets) == len(records)
    return offsets


@settings(
    max_examples=3,
    phases=[Phase.generate],  # one batch through a real service: no shrinking rounds through Kafka
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(fuzzed=st.lists(fuzzed_records(), min_size=20, max_size=20))
def test_every_fuzzed_record_has_its_outcome_and_the_normalizer_keeps_running(
    running: Normalizer, registry_url: str, fuzzed: list[tuple[bytes | None, raw.Headers]]
) -> None:
    sentinel = f"fuzz-sentinel-{uuid.uuid4()}"
    good = (json.dumps({**GOOD_WEBHOOK, "MessageID": sentinel}).encode(), [(raw.ESP, b"postmark")])
    offsets = _produce(running.bootstrap_servers, running.topic("raw"), [*fuzzed, *garbled_records(), good])

    registry = SchemaRegistryClient({"url": registry_url})
    deserialize = EventDeserializer(registry)

    def normalized() -> list:
        return [deserialize(m.value(), m.topic()) for m in read_topic(running.bootstrap_servers, running.topic("normalized"))]

    events = eventually(lambda: (found := normalized()) and any(e.message_id == sentinel for e in found) and found, 60)
    assert running.service.process.poll() is None, "the normalizer stopped:\n" + running.service.log()[-3000:]
    letters = read_topic(running.bootstrap_servers, running.topic("dlq"))

    # What the service's code path gives for each record, read back from the raw topic as the service read it.
    expect = RecordNormalizer(EventSerializer(registry, running.topic("normalized")), 10**9)
    raw_records = [m for m in read_topic(running.bootstrap_servers, running.topic("raw")) if m.offset() in offsets]
    assert len(raw_records) == len(fuzzed) + len(GARBLED_HEADERS) + 2
    for message in raw_records:
        offset = message.offset()
        outcome = expect(message)
        mine = [e for e in events if e.provenance.offset == offset]
        own_letters = [dict(m.headers()) for m in letters if dict(m.headers())[raw.DLQ_SOURCE_OFFSET] == str(offset).encode()]
        where = f"raw record {offset} ({(message.value() or b'')[:300]!r}, {message.headers()!r})"
        if outcome.failed:
            assert mine == [], f"{where}: events and a failure"
            assert len(own_letters) == 1, f"{where}: {len(own_letters)} dead letters, not one"
            [letter] = own_letters
            assert letter[raw.DLQ_STAGE] == outcome.stage.encode()
            assert letter[raw.DLQ_ERROR_CLASS] == type(outcome.error).__name__.encode()
            assert letter[raw.DLQ_ERROR_MESSAGE], f"{where}: a dead letter without a reason"
            assert isinstance(outcome.error, NormalizeError), f"{where}: a parser bug: {outcome.error!r}"
        else:
            assert own_letters == [], f"{where}: dead-lettered, but normalizes to {len(outcome.events)} events"
            assert [e.provenance.index for e in mine] == list(range(len(outcome.events)))
            assert [e.dedupe_id for e in mine] == [e.dedupe_id for e in outcome.events]
