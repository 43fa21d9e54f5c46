"""The tracking signal and @receiver, in process: the API anymail users paste their receivers into."""

from datetime import UTC, datetime

import pytest

from espstream.consumers import Signal, receiver
from espstream.schemas import Provenance, TrackingEvent


def event(event_type: str = "delivered", esp_name: str = "Postmark", esp: str = "postmark") -> TrackingEvent:
    return TrackingEvent(
        event_type=event_type,
        timestamp=datetime(2026, 11, 23, tzinfo=UTC),
        esp_name=esp_name,
        provenance=Provenance(
            esp=esp, topic="t", partition=0, offset=0, index=0, received_at=None, request_id=None, normalizer_version="x"
        ),
    )


def test_receiver_gets_anymails_arguments() -> None:
    signal = Signal()
    calls = []

    @receiver(signal)
    def handler(sender, event, esp_name, **kwargs):
        calls.append((sender, event.event_type, esp_name, kwargs))

    signal.send(sender="S", event=event(), offset=7)
    assert calls == [("S", "delivered", "Postmark", {"offset": 7})]


def test_filters_by_event_type_and_by_esp_name_or_slug() -> None:
    signal = Signal()
    seen = []
    signal.connect(lambda sender, event, esp_name, **kw: seen.append(("opens", event.event_type)), event_types={"opened"})
    signal.connect(lambda sender, event, esp_name, **kw: seen.append(("brevo", esp_name)), esps={"sendinblue"})

    signal.send(sender=None, event=event("opened"))
    signal.send(sender=None, event=event("delivered", esp_name="SendinBlue", esp="sendinblue"))
    assert seen == [("opens", "opened"), ("brevo", "SendinBlue")]


def test_connecting_twice_calls_once_and_strings_are_refused() -> None:
    signal = Signal()
    calls = []

    def handler(sender, event, esp_name, **kwargs):
        calls.append(1)

    signal.connect(handler)
    signal.connect(handler)
    signal.send(sender=None, event=event())
    assert calls == [1]
    with pytest.raises(TypeError):
        signal.connect(handler, esps="postmark")  # a str would match its letters, never the ESP
