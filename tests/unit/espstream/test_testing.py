"""espstream.testing: a raw webhook through normalize() to receivers, in process, no Kafka."""

import asyncio
import json
from datetime import UTC, datetime

import pytest

from espstream.consumers import Signal, receiver
from espstream.consumers.runner import TrackingConsumer
from espstream.normalizer import MalformedPayload, normalize
from espstream.testing import asend_webhook, events_from_webhook, send_event, send_webhook

BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Email": "john@example.com",
    "Tag": "welcome",
    "Metadata": {"customer": "42"},
    "BouncedAt": "2019-11-05T11:33:54.9070259-05:00",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
}


def test_a_webhook_reaches_the_receiver_with_the_runners_arguments() -> None:
    signal = Signal()
    calls = []

    @receiver(signal)
    def on_event(sender, event, esp_name, **kwargs):
        calls.append((sender, event, esp_name, kwargs))

    [sent] = send_webhook("postmark", BOUNCE, signal=signal)

    [(sender, event, esp_name, kwargs)] = calls
    assert event is sent
    assert sender is TrackingConsumer
    assert esp_name == "Postmark"
    assert kwargs == {"topic": None, "partition": None, "offset": None, "dedupe_id": event.dedupe_id}
    assert event.event_type == "bounced"
    assert event.reject_reason == "bounced"
    assert event.recipient == "john@example.com"
    assert event.event_id == "4323372036854775807"
    assert event.tags == ["welcome"]
    assert event.metadata == {"customer": "42"}
    assert event.esp_event == BOUNCE
    assert event.provenance is not None
    assert event.provenance.esp == "postmark"
    assert (event.provenance.topic, event.provenance.partition, event.provenance.offset) == ("", -1, -1)


def test_events_have_the_types_a_kafka_receiver_gets() -> None:
    [event] = events_from_webhook("postmark", BOUNCE)
    # Avro keeps the instant in UTC, whatever offset the ESP wrote.
    assert event.timestamp == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
    assert event.timestamp.utcoffset().total_seconds() == 0
    # The same webhook body gives the same dedupe id as in the pipeline.
    body = json.dumps(BOUNCE, ensure_ascii=False).encode()
    assert event.dedupe_id == normalize("postmark", body, "application/json")[0].dedupe_id


def test_filters_on_the_decorator_apply() -> None:
    signal = Signal()
    seen = []

    @receiver(signal, event_types={"delivered"})
    def deliveries(sender, event, esp_name, **kwargs):
        seen.append("deliveries")

    @receiver(signal, esps={"mailgun"})
    def mailgun_only(sender, event, esp_name, **kwargs):
        seen.append("mailgun")

    @receiver(signal, event_types={"bounced"}, esps={"Postmark"})
    def postmark_bounces(sender, event, esp_name, **kwargs):
        seen.append("postmark bounces")

    send_webhook("postmark", BOUNCE, signal=signal)
    assert seen == ["postmark bounces"]


def test_a_legacy_mailgun_form_post() -> None:
    signal = Signal()
    events = []
    signal.connect(lambda sender, event, esp_name, **kwargs: events.append(event))

    send_webhook(
        "mailgun",
        form=[
            ("event", "opened"),
            ("recipient", "alice@example.com"),
            ("message-id", "20160421180324.70521.79375.96884DDB@example.com"),
            ("tag", "spring"),
            ("tag", "sale"),
            ("customer", "42"),
            ("timestamp", "1461261330"),
            ("token", "1234567890abcdef1234567890abcdef"),
            ("signature", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
        ],
        signal=signal,
    )
    [event] = events
    assert event.event_type == "opened"
    assert event.esp_name == "Mailgun"
    assert event.message_id == "<20160421180324.70521.79375.96884DDB@example.com>"
    assert event.tags == ["spring", "sale"]
    assert event.metadata == {"customer": "42"}
    assert event.timestamp == datetime(2016, 4, 21, 17, 55, 30, tzinfo=UTC)
    assert event.esp_event["tag"] == ["spring", "sale"]


def test_async_receivers_are_run_from_sync_and_async_tests() -> None:
    signal = Signal()
    done = []

    @receiver(signal)
    async def on_event(sender, event, esp_name, **kwargs):
        await asyncio.sleep(0)
        done.append(event.event_type)

    send_webhook("postmark", BOUNCE, signal=signal)
    assert done == ["bounced"]

    async def an_async_test() -> None:
        await asend_webhook("postmark", BOUNCE, signal=signal)
        with pytest.raises(RuntimeError, match="asend_webhook"):
            send_webhook("postmark", BOUNCE, signal=signal)

    asyncio.run(an_async_test())
    assert done == ["bounced", "bounced"]


def test_a_receivers_exception_reaches_the_test() -> None:
    signal = Signal()

    @receiver(signal)
    def broken(sender, event, esp_name, **kwargs):
        raise LookupError(f"no customer for {event.recipient}")

    with pytest.raises(LookupError, match="john@example.com"):
        send_webhook("postmark", BOUNCE, signal=signal)


def test_a_webhook_the_normalizer_would_dead_letter_raises_its_reason() -> None:
    signal = Signal()
    calls = []
    signal.connect(lambda **kwargs: calls.append(kwargs))
    with pytest.raises(MalformedPayload, match="not valid JSON"):
        send_webhook("postmark", b"{not json", signal=signal)
    assert calls == []


def test_a_hand_built_event_can_be_sent() -> None:
    signal = Signal()
    got = []
    signal.connect(lambda sender, event, esp_name, **kwargs: got.append((esp_name, kwargs["dedupe_id"])))
    [event] = events_from_webhook("postmark", BOUNCE)
    event.recipient = "someone-else@example.com"
    send_event(event, signal=signal)
    assert got == [("Postmark", event.dedupe_id)]
