"""One fixture through both sides: anymail's view and our ``normalize()``, and what to expect."""

import json
from datetime import datetime, timezone
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from espstream import normalizer
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import avro_body, event_to_record, record_to_event, schema_str

from .compare import FIELDS, anymail_fields, same
from .fixtures import Fixture
from .oracle import AnymailResult, anymail_events


def run_anymail(fixture: Fixture) -> AnymailResult:
    return anymail_events(fixture.slug, fixture.body, fixture.content_type, fixture.headers)


def run_ours(fixture: Fixture) -> list[TrackingEvent]:
    return normalizer.normalize(fixture.slug, fixture.body, content_type=fixture.content_type, headers=fixture.headers)


def anymail_expected(result: AnymailResult) -> list[dict[str, Any]]:
    assert result.events is not None
    return [anymail_fields(event, result.esp_name) for event in result.events]


def departure_expected(fixture: Fixture, result: AnymailResult) -> list[dict[str, Any]]:
    """Our documented events for a departure: anymail's fields, overridden where we differ.

    Where anymail has no events to start from (it crashed), unlisted fields are
    TrackingEvent's defaults and esp_event is the parsed body.
    """
    assert fixture.departure is not None and fixture.departure.events is not None
    overrides = fixture.departure.events
    if result.events is not None and len(result.events) == len(overrides):
        bases = anymail_expected(result)
    else:
        default = TrackingEvent(event_type="unknown", esp_event=fixture.parsed_body, esp_name=result.esp_name)
        bases = [{field: getattr(default, field) for field in FIELDS} for _ in overrides]
    expected = []
    for base, override in zip(bases, overrides):
        unknown = set(override) - set(FIELDS)
        assert not unknown, f"{fixture.id}: expect.events names unknown fields {sorted(unknown)}"
        values = dict(override)
        if isinstance(values.get("timestamp"), str):
            values["timestamp"] = datetime.fromisoformat(values["timestamp"])
        expected.append(base | values)
    return expected


_SCHEMA = parse_schema(json.loads(schema_str()))


def avro_round_trip(events: list[TrackingEvent], fixture: Fixture) -> list[TrackingEvent]:
    """The events as a consumer decodes them: provenance given, Avro-encoded, decoded."""
    decoded = []
    for index, event in enumerate(events):
        event.provenance = Provenance(
            esp=fixture.slug,
            topic="tracking.raw",
            partition=3,
            offset=1234,
            index=index,
            received_at=datetime.fromisoformat("2024-05-06T07:08:09.123456+00:00"),
            request_id=f"parity-{fixture.name}",
            normalizer_version=normalizer.__version__,
        )
        buffer = BytesIO()
        schemaless_writer(buffer, _SCHEMA, event_to_record(event))
        # The service's encoder writes the same bytes as fastavro given the plain record.
        assert avro_body(event) == buffer.getvalue()
        buffer.seek(0)
        decoded.append(record_to_event(schemaless_reader(buffer, _SCHEMA, _SCHEMA)))
    return decoded


def assert_timestamp_as_anymails(fixture: Fixture) -> None:
    """One event, at the same instant as anymail's (whose naive time we read as UTC)."""
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    theirs = result.events[0].timestamp
    expected = theirs.replace(tzinfo=timezone.utc) if theirs is not None and theirs.tzinfo is None else theirs
    [ours] = run_ours(fixture)
    assert same(ours.timestamp, expected), f"ours {ours.timestamp!r}, anymail {theirs!r}"


def assert_epoch_timestamp_as_anymails(fixture: Fixture) -> None:
    """An epoch timestamp: the same instant as anymail's, or a MalformedPayload where anymail overflows."""
    result = run_anymail(fixture)
    if result.error is not None:
        assert isinstance(result.error, (OverflowError, OSError)), repr(result.error)
        try:
            run_ours(fixture)
        except normalizer.MalformedPayload as error:
            assert "timestamp is out of range" in str(error)
            return
        raise AssertionError("anymail overflows; we must dead-letter it")
    [ours] = run_ours(fixture)
    theirs = result.events[0].timestamp
    assert same(ours.timestamp, theirs), f"ours {ours.timestamp!r}, anymail {theirs!r}"
