"""Every fixture of every implemented ESP: our events equal django-anymail's.

Parity fixtures: anymail's view and ``normalize()`` must agree, field by field,
also after an Avro round trip; where anymail refuses a misconfigured webhook we
raise MisconfiguredWebhook. Departure fixtures (an ``expect`` block) are the
cases where anymail crashes or we deliberately differ: they assert our
documented behaviour, and that anymail really does behave differently.
"""

import pytest

from espstream import normalizer
from espstream.normalizer.esps import PARSERS
from tests.support.parity.compare import anymail_fields, assert_same_events, differences
from tests.support.parity.fixtures import Fixture, fixtures_for
from tests.support.parity.harness import anymail_expected, avro_round_trip, departure_expected, run_anymail, run_ours
from tests.support.parity.oracle import AnymailResult

MIN_FIXTURES_PER_ESP = 15

IMPLEMENTED = sorted(PARSERS)
ALL_FIXTURES = [fixture for slug in IMPLEMENTED for fixture in fixtures_for(slug)]
PARITY = [fixture for fixture in ALL_FIXTURES if fixture.departure is None]
DEPARTURES = [fixture for fixture in ALL_FIXTURES if fixture.departure is not None]


def _ids(fixtures: list[Fixture]) -> list[str]:
    return [fixture.id for fixture in fixtures]


def _parity_result(fixture: Fixture) -> AnymailResult:
    result = run_anymail(fixture)
    assert result.error is None or result.refused, (
        f"{fixture.id}: anymail crashed with {result.error!r}; "
        "a fixture anymail cannot handle needs an 'expect' block saying what we do"
    )
    return result


@pytest.mark.parametrize("slug", IMPLEMENTED)
def test_every_implemented_esp_has_fixtures(slug: str) -> None:
    assert len(fixtures_for(slug)) >= MIN_FIXTURES_PER_ESP


@pytest.mark.parametrize("fixture", PARITY, ids=_ids(PARITY))
def test_events_equal_anymails(fixture: Fixture) -> None:
    result = _parity_result(fixture)
    if result.refused:
        with pytest.raises(normalizer.MisconfiguredWebhook):
            run_ours(fixture)
        return
    assert_same_events(run_ours(fixture), anymail_expected(result), fixture.id)


@pytest.mark.parametrize("fixture", PARITY, ids=_ids(PARITY))
def test_events_equal_anymails_after_avro_round_trip(fixture: Fixture) -> None:
    result = _parity_result(fixture)
    if result.refused:
        with pytest.raises(normalizer.MisconfiguredWebhook):
            run_ours(fixture)
        return
    ours = run_ours(fixture)
    decoded = avro_round_trip(ours, fixture)
    assert_same_events(decoded, anymail_expected(result), f"{fixture.id} after Avro")
    assert [(event.dedupe_id, event.provenance) for event in decoded] == [
        (event.dedupe_id, event.provenance) for event in ours
    ]


@pytest.mark.parametrize("fixture", DEPARTURES, ids=_ids(DEPARTURES))
def test_documented_departure_from_anymail(fixture: Fixture) -> None:
    departure = fixture.departure
    assert departure is not None
    result = run_anymail(fixture)
    assert not result.refused, f"{fixture.id}: anymail refuses this as misconfigured: parity, drop 'expect'"

    if departure.error is not None:
        with pytest.raises(normalizer.NormalizeError) as raised:
            run_ours(fixture)
        assert type(raised.value).__name__ == departure.error
        assert departure.message in str(raised.value)
        return

    expected = departure_expected(fixture, result)
    if result.error is None:
        anymails = [anymail_fields(event, result.esp_name) for event in result.events or []]
        assert differences(anymails, expected), f"{fixture.id}: anymail gives the expected events: make it parity"
    ours = run_ours(fixture)
    assert_same_events(ours, expected, fixture.id)
    assert_same_events(avro_round_trip(ours, fixture), expected, f"{fixture.id} after Avro")
