"""The status and suppression merge: any order and any repetition of the same events gives the same state.

States go through their Avro records (fastavro with the .avsc schemas, as the
topics hold them) where a restart would read them back, so a state rebuilt from its
topic and joined with more events is the same as one never stopped.
"""

import io
import json
from datetime import UTC, datetime, timedelta
from functools import reduce

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from espstream.consumers.status.records import (
    record_to_status,
    record_to_suppression,
    status_to_record,
    suppression_to_record,
)
from espstream.consumers.status.state import (
    PRECEDENCE,
    join_status,
    join_suppression,
    status_from_event,
    suppression_from_event,
)
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import EVENT_TYPES, state_schema_str

T0 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
MESSAGE = "883953f4-6105-42a2-a16a-77a8eac79483"


def event(event_type: str, minute: int, copy: int = 0, recipient: str = "Alice@Example.com") -> TrackingEvent:
    """An event; ``copy`` tells apart events otherwise alike (two opens in the same minute)."""
    return TrackingEvent(
        event_type=event_type,
        timestamp=T0 + timedelta(minutes=minute),
        message_id=MESSAGE,
        recipient=recipient,
        esp_name="Postmark",
        dedupe_id=f"{event_type}-{minute}-{recipient}-{copy}",  # the same event, the same id
        provenance=Provenance(esp="postmark", topic="raw", partition=0, offset=0, index=0, received_at=None, request_id=None,
                              normalizer_version="test"),
    )


def fold(events, from_event, join, key):
    """Each key's state: its events' states joined, as the service joins them."""
    states = {}
    for state in filter(None, map(from_event, events)):
        states.setdefault(key(state), []).append(state)
    return {name: reduce(join, each) for name, each in states.items()}


def statuses(*events):
    return fold(events, status_from_event, join_status, lambda state: state.key)


def suppressions(*events):
    return fold(events, suppression_from_event, join_suppression, lambda state: state.address)


def status(*events):
    [state] = statuses(*events).values()
    return state


def suppressed(*events):
    return suppressions(*events).get("alice@example.com")


def through_avro(schema: str, record: dict) -> dict:
    parsed = fastavro.parse_schema(json.loads(state_schema_str(schema)))
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, parsed, None)


events_strategy = st.lists(
    st.builds(
        event,
        st.sampled_from(sorted(EVENT_TYPES)),
        st.integers(0, 20),
        st.integers(0, 1),
        st.sampled_from(["alice@example.com", "ALICE@example.com", "bob@example.com"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(events=events_strategy, data=st.data())
def test_any_order_and_any_repetition_give_the_same_state(events, data):
    repeated = events + data.draw(st.lists(st.sampled_from(events), max_size=8))
    shuffled = data.draw(st.permutations(repeated))

    assert statuses(*shuffled) == statuses(*events)
    assert suppressions(*shuffled) == suppressions(*events)


@settings(max_examples=200, deadline=None)
@given(events=events_strategy, data=st.data())
def test_a_state_read_back_from_its_record_and_joined_with_more_events_is_the_same(events, data):
    cut = data.draw(st.integers(0, len(events)))
    before, after = events[:cut], events[cut:]

    assert resumed(before, after, statuses, join_status, "MessageStatus", status_to_record, record_to_status) == statuses(*events)
    assert resumed(before, after, suppressions, join_suppression, "Suppression", suppression_to_record, record_to_suppression) == (
        suppressions(*events)
    )


def resumed(before, after, states, join, schema, to_record, from_record):
    """The states of ``before`` written and read back (a restart), then ``after`` joined into them."""
    read_back = {key: from_record(through_avro(schema, to_record(state))) for key, state in states(*before).items()}
    for key, state in states(*after).items():
        read_back[key] = join(read_back[key], state) if key in read_back else state
    return read_back


def test_every_event_type_has_one_place_in_the_precedence():
    listed = [event_type for _tier, types in PRECEDENCE for event_type in types]
    assert sorted(listed) == sorted(EVENT_TYPES)


def test_a_late_delivered_does_not_hide_a_bounce():
    state = status(event("sent", 0), event("bounced", 2), event("delivered", 5))
    assert state.status == "bounced"
    assert state.times == {"bounced": T0 + timedelta(minutes=2), "delivered": T0 + timedelta(minutes=5), "sent": T0}
    assert state.events == 3
    assert state.last_event_at == T0 + timedelta(minutes=5)


def test_opens_after_a_bounce_are_recorded_but_the_status_stays():
    state = status(event("bounced", 1), event("opened", 3), event("clicked", 4))
    assert state.status == "bounced"
    assert set(state.times) == {"bounced", "opened", "clicked"}


def test_within_a_tier_the_later_event_time_wins_whatever_the_arrival_order():
    assert status(event("opened", 9), event("clicked", 4)).status == "opened"
    assert status(event("sent", 1), event("deferred", 2)).status == "deferred"
    # A tier above wins over a later time: a deferral read after the delivery does not take it back.
    assert status(event("delivered", 3), event("deferred", 7)).status == "delivered"


def test_times_keep_the_first_time_of_each_type():
    state = status(event("opened", 8), event("opened", 3), event("opened", 5))
    assert state.times == {"opened": T0 + timedelta(minutes=3)}
    assert state.last_times == {"opened": T0 + timedelta(minutes=8)}
    assert state.events == 3


def test_the_same_event_twice_is_one_event():
    assert status(event("delivered", 1), event("delivered", 1)).events == 1


def test_only_hard_failures_complaints_unsubscribes_and_rejections_suppress():
    for event_type in ("delivered", "deferred", "failed", "opened", "sent", "queued", "unknown"):
        assert suppressed(event(event_type, 1)) is None
    for event_type in ("bounced", "complained", "unsubscribed", "rejected"):
        state = suppressed(event(event_type, 1))
        assert (state.address, state.reason, state.at, state.esp, state.message_id) == (
            "alice@example.com", event_type, T0 + timedelta(minutes=1), "postmark", MESSAGE
        )


def test_a_later_subscribe_lifts_an_unsubscribe_and_nothing_else():
    assert suppressed(event("unsubscribed", 1), event("subscribed", 2)).reason is None
    assert suppressed(event("subscribed", 2), event("unsubscribed", 1)).reason is None  # read in the other order
    assert suppressed(event("subscribed", 1), event("unsubscribed", 2)).reason == "unsubscribed"
    assert suppressed(event("bounced", 1), event("subscribed", 2)).reason == "bounced"
    lifted = suppressed(event("unsubscribed", 1), event("complained", 0), event("subscribed", 2))
    assert (lifted.reason, lifted.at) == ("complained", T0)
