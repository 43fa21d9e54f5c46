"""`espstream consume --django-settings`: a Django project's anymail receivers, unchanged, on the stream."""

from pathlib import Path

import pytest

from espstream.consumers.django_bridge import anymail_view, to_anymail_event
from espstream.normalizer import NormalizeError
from espstream.testing import events_from_webhook
from tests.support.parity.compare import anymail_fields, differences
from tests.support.parity.fixtures import fixtures_for
from tests.support.parity.oracle import anymail_events, configure_django
from tests.support.services import Service


def test_consume_needs_receivers_or_django_settings(tmp_path: Path) -> None:
    consumer = Service(["consume", "--group", "nothing-to-call"], {}, tmp_path / "consume.log").start()
    assert consumer.process is not None
    assert consumer.process.wait(30) == 2
    assert "--django-settings" in consumer.log()


PARITY_FIXTURES = [
    fixture for slug in ("postmark", "mailgun") for fixture in fixtures_for(slug) if fixture.departure is None
]


@pytest.mark.parametrize("fixture", PARITY_FIXTURES, ids=[f.id for f in PARITY_FIXTURES])
def test_the_bridged_event_equals_anymails_own(fixture) -> None:
    """Every attribute, after the trip through Avro, equals what anymail's view sends for the same request."""
    configure_django()
    expected = anymail_events(fixture.slug, fixture.body, fixture.content_type, fixture.headers)
    if expected.error is not None:  # anymail refuses the request: no receiver is called, here neither
        with pytest.raises(NormalizeError):
            events_from_webhook(fixture.slug, fixture.body, content_type=fixture.content_type, headers=fixture.headers)
        return
    ours = events_from_webhook(fixture.slug, fixture.body, content_type=fixture.content_type, headers=fixture.headers)
    bridged = [to_anymail_event(event) for event in ours]
    # Equal but for the contract's declared departures (tags a list, metadata a dict, numbers in text fields as text).
    assert differences(
        [anymail_fields(event, esp_name) for event, esp_name in zip(bridged, (e.esp_name for e in ours))],
        [anymail_fields(event, expected.esp_name) for event in expected.events],
    ) == []
    for event, mine, theirs in zip(ours, bridged, expected.events):
        assert type(mine) is type(theirs)
        assert type(mine.esp_event) is type(theirs.esp_event)  # a legacy form stays a QueryDict
        assert anymail_view(event).__name__ == f"{fixture.slug.capitalize()}TrackingWebhookView"
