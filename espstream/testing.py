"""Testing receivers without Kafka: a raw ESP webhook in, your receivers called in-process.

``send_webhook("postmark", body)`` normalizes the body as the normalizer does,
round-trips each event through the Avro schema (so receivers get exactly the
types the runner gives them: a UTC ``timestamp``, ``esp_event`` parsed back from
JSON text, metadata values as the schema keeps them) and calls every wanted
receiver with the runner's arguments. Nothing is retried, dead-lettered or
deduplicated: a receiver's exception propagates to the test.

Where the runner passes a record's position, the helper passes placeholders:
``topic``, ``partition`` and ``offset`` are None, and ``event.provenance`` has
``topic=""``, ``partition=-1``, ``offset=-1``, ``request_id=None`` and
``received_at`` the time of the call.
"""

import asyncio
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from espstream.consumers.runner import TrackingConsumer
from espstream.consumers.signals import Signal, tracking
from espstream.normalizer import __version__ as normalizer_version
from espstream.normalizer import normalize
from espstream.normalizer.settings import NormalizerSettings
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import avro_body, decode_body

Body = bytes | str | Mapping[str, Any] | Sequence[Any]
Form = Mapping[str, str | Sequence[str]] | Sequence[tuple[str, str]]

#: What receivers get as ``sender``: the runner's class, as from ``espstream consume``.
SENDER = TrackingConsumer

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def events_from_webhook(
    esp: str,
    body: Body | None = None,
    *,
    form: Form | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[TrackingEvent]:
    """The events receivers get for one webhook request to ``/webhooks/<esp>/tracking/``.

    ``body`` is the request body: bytes or text as sent, or a JSON value (dict or
    list) to send as JSON. ``form`` instead sends url-encoded fields, e.g.
    ``{"event": "opened", "tag": ["a", "b"]}``. ``content_type`` defaults to
    ``application/x-www-form-urlencoded`` for ``form``, else ``application/json``. Raises what normalize() raises for a webhook the
    normalizer would dead-letter.
    """
    payload, default_type = _encode_body(body, form)
    events = normalize(esp, payload, content_type or default_type, headers, NormalizerSettings().normalize_options)
    received_at = datetime.now(UTC)
    for index, event in enumerate(events):
        event.provenance = Provenance(
            esp=esp,
            topic="",
            partition=-1,
            offset=-1,
            index=index,
            received_at=received_at,
            request_id=None,
            normalizer_version=normalizer_version,
        )
    return [_through_avro(event) for event in events]


def send_webhook(
    esp: str,
    body: Body | None = None,
    *,
    form: Form | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    signal: Signal = tracking,
) -> list[TrackingEvent]:
    """Call the receivers of ``signal`` for each event of one webhook; return the events.

    Async receivers are run to completion. From inside a running event loop
    (an async test), use ``await asend_webhook(...)``.
    """
    events = events_from_webhook(esp, body, form=form, content_type=content_type, headers=headers)
    for event in events:
        send_event(event, signal=signal)
    return events


async def asend_webhook(
    esp: str,
    body: Body | None = None,
    *,
    form: Form | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    signal: Signal = tracking,
) -> list[TrackingEvent]:
    """``send_webhook`` for async tests: async receivers are awaited on the running loop."""
    events = events_from_webhook(esp, body, form=form, content_type=content_type, headers=headers)
    for event in events:
        await asend_event(event, signal=signal)
    return events


def send_event(event: TrackingEvent, *, signal: Signal = tracking) -> None:
    """Call the wanted receivers of ``signal`` with ``event``, as the runner does."""
    for result in _call_receivers(event, signal):
        if inspect.isawaitable(result):
            _run_to_completion(result)


async def asend_event(event: TrackingEvent, *, signal: Signal = tracking) -> None:
    """``send_event`` for async tests."""
    for result in _call_receivers(event, signal):
        if inspect.isawaitable(result):
            await result


def _call_receivers(event: TrackingEvent, signal: Signal) -> Iterator[Any]:
    """Each wanted receiver's result, one at a time: a failure stops the rest, as in Django's ``send``."""
    kwargs = {"topic": None, "partition": None, "offset": None, "dedupe_id": event.dedupe_id}
    for connection in signal.connections:
        if connection.wants(event):
            yield connection.receiver(sender=SENDER, event=event, esp_name=event.esp_name, **kwargs)


def _run_to_completion(awaitable: Any) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_await(awaitable))
        return
    if inspect.iscoroutine(awaitable):
        awaitable.close()  # never awaited: no "coroutine was never awaited" warning on top
    raise RuntimeError("an async receiver inside a running event loop: use `await asend_webhook(...)`")


async def _await(awaitable: Any) -> None:
    await awaitable


def _encode_body(body: Body | None, form: Form | None) -> tuple[bytes, str]:
    if form is not None:
        if body is not None:
            raise TypeError("give body or form, not both")
        pairs = form.items() if isinstance(form, Mapping) else form
        return urlencode(list(pairs), doseq=True).encode(), FORM_CONTENT_TYPE
    if isinstance(body, bytes):
        return body, JSON_CONTENT_TYPE
    if isinstance(body, str):
        return body.encode(), JSON_CONTENT_TYPE
    if body is None:
        raise TypeError("give the webhook's body (or form)")
    # Non-ASCII as UTF-8, as ESPs send it.
    return json.dumps(body, ensure_ascii=False).encode(), JSON_CONTENT_TYPE


def _through_avro(event: TrackingEvent) -> TrackingEvent:
    """``event`` as a receiver of the normalized topic decodes it (raises what encoding would)."""
    return decode_body(avro_body(event))

