"""Every webhook fixture of every ESP through the running pipeline: HTTP gateway -> raw topic ->
normalizer service -> Avro on the normalized topic. What a consumer decodes equals django-anymail's
events for the same request (the parity tests' expectation), and what anymail refuses or we
deliberately dead-letter is a dead letter with that reason.
"""

from collections import defaultdict
from collections.abc import Iterator

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.normalizer.esps import PARSERS
from espstream.schemas import TrackingEvent
from espstream.schemas.avro import EventDeserializer
from tests.integration.test_pipeline import Pipeline
from tests.integration.test_pipeline import pipeline as pipeline  # noqa: F401 - the fixture, for this module
from tests.support.parity.compare import assert_same_events
from tests.support.parity.fixtures import Fixture, fixtures_for
from tests.support.parity.harness import anymail_expected, departure_expected, run_anymail
from tests.support.services import eventually, read_topic

FIXTURES = [fixture for slug in sorted(PARSERS) for fixture in fixtures_for(slug)]


@pytest.fixture(scope="module")
def posted(pipeline: Pipeline) -> Iterator[dict[str, Fixture]]:
    """Every fixture posted once: request id -> fixture."""
    by_request: dict[str, Fixture] = {}
    for fixture in FIXTURES:
        response = pipeline.post(fixture.slug, fixture.body, content_type=fixture.content_type, headers=fixture.headers)
        assert response.status_code == 200, f"{fixture.id}: {response.status_code} {response.text}"
        by_request[response.headers["X-Request-Id"]] = fixture
    yield by_request


@pytest.fixture(scope="module")
def outcomes(
    pipeline: Pipeline, posted: dict[str, Fixture], registry_url: str
) -> dict[str, tuple[list[TrackingEvent], dict[str, bytes] | None]]:
    """request id -> (its events in index order, its dead letter's headers or None), once all arrived."""
    decode = EventDeserializer(SchemaRegistryClient({"url": registry_url}))
    normalized_topic, dlq_topic = pipeline.topic("normalized"), pipeline.topic("dlq")

    def collect() -> dict[str, tuple[list[TrackingEvent], dict[str, bytes] | None]] | None:
        events: dict[str, list[TrackingEvent]] = defaultdict(list)
        for message in read_topic(pipeline.bootstrap_servers, normalized_topic):
            event = decode(message.value(), normalized_topic)
            events[event.provenance.request_id].append(event)
        letters = {}
        for message in read_topic(pipeline.bootstrap_servers, dlq_topic):
            headers = dict(message.headers())
            letters[headers["request-id"].decode()] = headers
        result = {}
        for request_id, fixture in posted.items():
            if request_id not in letters and not events.get(request_id) and _expects_events(fixture):
                return None  # not normalized yet
            found = sorted(events.get(request_id, []), key=lambda event: event.provenance.index)
            result[request_id] = (found, letters.get(request_id))
        return result

    return eventually(collect, timeout=120, interval=1.0)


def _expects_events(fixture: Fixture) -> bool:
    departure = fixture.departure
    if departure is not None:
        return departure.error is None and bool(departure.events)
    result = run_anymail(fixture)
    return not result.refused and bool(result.events)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[fixture.id for fixture in FIXTURES])
def test_the_pipeline_gives_anymails_events(
    fixture: Fixture, posted: dict[str, Fixture], outcomes: dict, broker: EmbeddedBroker
) -> None:
    [request_id] = [request_id for request_id, posted_fixture in posted.items() if posted_fixture is fixture]
    events, letter = outcomes[request_id]
    departure = fixture.departure
    result = run_anymail(fixture)

    if result.refused or (departure is not None and departure.error is not None):
        expected_class = "MisconfiguredWebhook" if result.refused else departure.error
        assert events == []
        assert letter is not None, f"{fixture.id}: no dead letter"
        assert letter["dlq-error-class"].decode() == expected_class
        assert letter["dlq-stage"] == b"normalize"
        return

    expected = departure_expected(fixture, result) if departure is not None else anymail_expected(result)
    assert letter is None, f"{fixture.id}: dead-lettered: {letter and letter['dlq-error-message']!r}"
    assert_same_events(events, expected, fixture.id)
    for index, event in enumerate(events):
        assert event.provenance.esp == fixture.slug
        assert event.provenance.index == index
        assert event.dedupe_id.endswith(f"-{index}")
