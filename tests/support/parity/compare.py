"""Our events against anymail's, field by field, with a failure message that names each difference."""

import math
from datetime import datetime
from typing import Any

from espstream.schemas import TrackingEvent

# Every attribute of anymail's AnymailTrackingEvent, plus the ESP name.
FIELDS = (
    "event_type",
    "timestamp",
    "event_id",
    "message_id",
    "recipient",
    "metadata",
    "tags",
    "reject_reason",
    "description",
    "mta_response",
    "user_agent",
    "click_url",
    "esp_event",
    "esp_name",
)

# Text fields: where anymail hands back the ESP's JSON number, ours is its decimal text
# (the Avro contract has strings here; normalizer.fields.optional_text).
TEXT_FIELDS = frozenset(
    ("event_id", "message_id", "recipient", "description", "mta_response", "user_agent", "click_url")
)


def our_fields(event: TrackingEvent) -> dict[str, Any]:
    return {field: getattr(event, field) for field in FIELDS}


def anymail_fields(event: Any, esp_name: str) -> dict[str, Any]:
    """anymail's event as we mean to reproduce it: with espstream's two declared departures."""
    fields = {field: getattr(event, field) for field in FIELDS if field != "esp_name"}
    fields["tags"] = _as_tag_list(fields["tags"])
    fields["metadata"] = {} if fields["metadata"] is None else fields["metadata"]
    fields["esp_event"] = _plain(fields["esp_event"])
    fields["esp_name"] = esp_name
    return fields


def _as_tag_list(tags: Any) -> Any:
    # Departure: tags is always a list of str (None -> [], bare str -> [str], no None items).
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, (int, float)) and not isinstance(tags, bool):
        return [_as_text(tags)]
    if isinstance(tags, list):
        # A JSON number as a tag is its text, as in every text field.
        return [_as_text(tag) for tag in tags if tag is not None]
    return tags


def _plain(esp_event: Any) -> Any:
    """A Django QueryDict (legacy form posts) as {field: [values]}."""
    from django.utils.datastructures import MultiValueDict

    if isinstance(esp_event, MultiValueDict):
        return {field: list(values) for field, values in esp_event.lists()}
    return esp_event


def differences(ours: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    if len(ours) != len(expected):
        return [
            f"{len(ours)} event(s), expected {len(expected)}: ours are "
            f"{[event['event_type'] for event in ours]}, expected {[event['event_type'] for event in expected]}"
        ]
    return [
        f"event {index} {field}: ours {mine[field]!r} != expected {theirs[field]!r}"
        for index, (mine, theirs) in enumerate(zip(ours, expected))
        for field in FIELDS
        if not same_field(field, mine[field], theirs[field])
    ]


def same_field(field: str, mine: Any, theirs: Any) -> bool:
    """``same``, with the contract's conversions: a number in a text field is its text;
    metadata is a map (key order is not part of it: anymail's is not even stable for SendGrid)."""
    if field in TEXT_FIELDS:
        mine, theirs = _as_text(mine), _as_text(theirs)
    if field == "metadata" and isinstance(mine, dict) and isinstance(theirs, dict):
        return mine.keys() == theirs.keys() and all(same(mine[key], theirs[key]) for key in mine)
    return same(mine, theirs)


def assert_same_events(ours: list[TrackingEvent], expected: list[dict[str, Any]], context: str) -> None:
    problems = differences([our_fields(event) for event in ours], expected)
    assert not problems, f"{context}: {len(problems)} difference(s)\n  " + "\n  ".join(problems)


def same(mine: Any, theirs: Any) -> bool:
    """Equal values of equal types (1 != 1.0 != True, "1" != 1); datetimes: the same instant."""
    if isinstance(mine, datetime) and isinstance(theirs, datetime):
        # A naive datetime names no instant: only equal to another naive one.
        return (mine.tzinfo is None) == (theirs.tzinfo is None) and mine == theirs
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, dict):
        return list(mine) == list(theirs) and all(same(mine[key], theirs[key]) for key in mine)
    if isinstance(mine, (list, tuple)):
        return len(mine) == len(theirs) and all(same(a, b) for a, b in zip(mine, theirs))
    if isinstance(mine, float) and math.isnan(mine):
        return math.isnan(theirs)
    return mine == theirs


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
