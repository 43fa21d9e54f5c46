"""The fuzz property: a raw webhook gives Avro-encodable events or a NormalizeError, in bounded time.

"Bad input only ever becomes a dead letter": the service dead-letters any
exception, but one that is not a ``NormalizeError`` means a parser bug, and an
event that does not encode fails the whole record at the encode stage. Both
fail here, and so does a request that takes longer than a deadline (a hang or
a superlinear blowup, not a timing measurement).
"""

import io
import json
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from espstream import normalizer
from espstream.schemas import Provenance, TrackingEvent
from espstream.schemas.avro import avro_body, event_to_record, record_to_event, schema_str

# Wall-clock seconds one request may take: far above what any parser needs.
DEADLINE_SECONDS = 2.0

_SCHEMA = parse_schema(json.loads(schema_str()))


class Hang(BaseException):
    """Raised in the main thread when a request overruns its deadline.

    A BaseException, so that no ``except Exception`` in a parser can swallow it.
    """


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise AssertionError if the block runs longer than ``seconds`` (SIGALRM, main thread only).

    pytest-timeout arms the same timer: its handler and remaining time are put back afterwards.
    """
    previous_handler = signal.getsignal(signal.SIGALRM)
    previous_remaining, previous_interval = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()

    def overrun(signum: int, frame: object) -> None:
        raise Hang()

    signal.signal(signal.SIGALRM, overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Hang:
        raise AssertionError(f"no result within {seconds}s: a hang or a superlinear blowup") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_remaining:
            left = previous_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), previous_interval)


def encode(event: TrackingEvent, esp: str, index: int) -> TrackingEvent:
    """``event`` as the service writes it (provenance set, Avro with the real schema), decoded again."""
    event.provenance = Provenance(
        esp=esp,
        topic="tracking.raw",
        partition=0,
        offset=index,
        index=index,
        received_at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        request_id="fuzz",
        normalizer_version=normalizer.__version__,
    )
    buffer = io.BytesIO()
    schemaless_writer(buffer, _SCHEMA, event_to_record(event))
    # The service's encoder writes the same bytes as fastavro given the plain record.
    assert avro_body(event) == buffer.getvalue()
    buffer.seek(0)
    return record_to_event(schemaless_reader(buffer, _SCHEMA, _SCHEMA))


def outcome(
    esp: str,
    body: bytes,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[TrackingEvent] | normalizer.NormalizeError:
    """What ``normalize()`` gives (events, all Avro-encodable) or raises (a NormalizeError with a reason).

    Any other exception propagates: it is a parser bug.
    """
    try:
        events = normalizer.normalize(esp, body, content_type=content_type, headers=headers)
    except normalizer.NormalizeError as error:
        assert str(error), f"{type(error).__name__} without a reason: a dead letter needs one"
        return error
    assert isinstance(events, list), f"normalize() returned {type(events).__name__}, not a list"
    for index, event in enumerate(events):
        assert isinstance(event, TrackingEvent), f"event {index} is a {type(event).__name__}"
        encode(event, esp, index)
    return events


def check(
    esp: str,
    body: bytes,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    seconds: float = DEADLINE_SECONDS,
) -> list[TrackingEvent] | normalizer.NormalizeError:
    """``outcome()`` within ``seconds``."""
    with deadline(seconds):
        return outcome(esp, body, content_type, headers)
