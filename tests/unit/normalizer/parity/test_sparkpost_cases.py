"""SparkPost cases generated in code: the initial-open setting, and timestamps.

The initial-open setting is anymail's SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED,
read by its view's ``__init__``: each side of the comparison gets a view built
under that setting, and we get NormalizerSettings' option from the environment variable, switched per test.
"""

from typing import Any

import pytest
from django.test import override_settings

from espstream import normalizer
from espstream.normalizer.settings import NormalizerSettings
from tests.support.parity.compare import anymail_fields, assert_same_events
from tests.support.parity.fixtures import Fixture, from_spec
from tests.support.parity.harness import assert_epoch_timestamp_as_anymails, run_anymail, run_ours
from tests.support.parity.oracle import ANYMAIL_SETTINGS, configure_django, django_request

SETTING = "ESPSTREAM_SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"


def _track_event(event_type: str, event_id: str) -> dict[str, Any]:
    return {"msys": {"track_event": {
        "type": event_type, "event_id": event_id, "raw_rcpt_to": "Recipient@example.com", "rcpt_to": "recipient@example.com",
        "timestamp": "1700000000", "transmission_id": "65832150921904138", "user_agent": UA,
        "campaign_id": "Spring", "rcpt_meta": {"customer": "42"},
    }}}  # fmt: skip


INITIAL_OPENS = from_spec("sparkpost", "initial_opens", {
    "description": "initial_open, amp_initial_open and open in one batch",
    "body": [_track_event("initial_open", "1"), _track_event("amp_initial_open", "2"), _track_event("open", "3")],
})  # fmt: skip


def _anymail_with_setting(fixture: Fixture, track_initial_open: bool) -> list[dict[str, Any]]:
    """anymail's events from a SparkPost view built under the setting."""
    configure_django()
    from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView

    options = {**ANYMAIL_SETTINGS, "SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED": track_initial_open}
    with override_settings(ANYMAIL=options):
        view = SparkPostTrackingWebhookView()
    request = django_request("sparkpost", fixture.body, fixture.content_type, fixture.headers)
    return [anymail_fields(event, view.esp_name) for event in view.parse_events(request)]


@pytest.mark.parametrize(("text", "track_initial_open"), [
    ("true", True), ("1", True), ("yes", True), ("on", True), ("True", True),
    ("false", False), ("0", False), ("no", False), ("off", False),
])  # fmt: skip
def test_initial_open_setting_gives_anymails_events(
    monkeypatch: pytest.MonkeyPatch, text: str, track_initial_open: bool
) -> None:
    monkeypatch.setenv(SETTING, text)
    ours = _ours_with_settings(INITIAL_OPENS)
    assert_same_events(ours, _anymail_with_setting(INITIAL_OPENS, track_initial_open), f"{SETTING}={text}")
    expected_initial = "opened" if track_initial_open else "unknown"
    assert [event.event_type for event in ours] == [expected_initial, expected_initial, "opened"]


def test_initial_open_setting_is_off_by_default_as_in_anymail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    assert_same_events(_ours_with_settings(INITIAL_OPENS), _anymail_with_setting(INITIAL_OPENS, False), "setting unset")
    # The parity suite's shared view is anymail's default one.
    result = run_anymail(INITIAL_OPENS)
    assert [event.event_type for event in result.events] == ["unknown", "unknown", "opened"]


def test_the_option_is_normalizes_not_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "true")
    assert run_ours(INITIAL_OPENS)[0].event_type == "unknown"  # the default options
    for track_initial_open, expected in [(True, "opened"), (False, "unknown")]:
        options = normalizer.NormalizeOptions(sparkpost_track_initial_open_as_opened=track_initial_open)
        events = normalizer.normalize("sparkpost", INITIAL_OPENS.body, INITIAL_OPENS.content_type, options=options)
        assert events[0].event_type == expected


def _ours_with_settings(fixture: Fixture) -> list[Any]:
    options = NormalizerSettings().normalize_options
    return normalizer.normalize(fixture.slug, fixture.body, fixture.content_type, fixture.headers, options)


def _timestamp_fixture(timestamp: object) -> Fixture:
    return from_spec("sparkpost", "timestamp", {
        "description": f"timestamp {timestamp!r}",
        "body": [{"msys": {"message_event": {"type": "delivery", "raw_rcpt_to": "a@example.com", "timestamp": timestamp}}}],
    })  # fmt: skip


# anymail reads int(timestamp) and gives None where int() or the date refuse it.
TIMESTAMPS = [
    "1454442600",
    1454442600,
    1454442600.9,  # int() truncates
    "1454442600.5",  # int() refuses a fraction in text
    " 1454442600\n",
    "+1454442600",
    "1_454_442_600",  # int() allows underscores
    "١٤٥٤٤٤٢٦٠٠",  # and any Unicode digits
    "-1",
    "2018-10-11T23:24:45.000+00:00",
    "",
    None,
    True,
    [1454442600],
    {"seconds": 1454442600},
    "253402300800",  # year 10000
    "1000000000000000000",  # beyond the platform's time_t: anymail crashes
    1e300,
]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=repr)
def test_timestamps_are_read_as_anymail_reads_them(value: object) -> None:
    fixture = _timestamp_fixture(value)
    assert_epoch_timestamp_as_anymails(fixture)
