"""The raw webhook record on the raw topic, and the dead letters made of it.

value: the HTTP request body, byte for byte.
headers: what the gateway knew about the request (names below), plus every
request header except credentials as ``http-<lowercase name>``.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from confluent_kafka import Message

ESP = "esp"
CONTENT_TYPE = "content-type"
RECEIVED_AT = "received-at"  # ISO 8601, UTC
REQUEST_ID = "request-id"
QUERY_STRING = "query-string"
CLIENT_ADDR = "client-addr"
GATEWAY_VERSION = "gateway-version"
HTTP_PREFIX = "http-"

# Request headers never copied into a record: they carry credentials.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

# Dead letters: the raw record's value and headers, plus these.
DLQ_STAGE = "dlq-stage"  # normalize | encode | produce
DLQ_ERROR_CLASS = "dlq-error-class"
DLQ_ERROR_MESSAGE = "dlq-error-message"
DLQ_SOURCE_TOPIC = "dlq-source-topic"
DLQ_SOURCE_PARTITION = "dlq-source-partition"
DLQ_SOURCE_OFFSET = "dlq-source-offset"
DLQ_FAILED_AT = "dlq-failed-at"
DLQ_NORMALIZER_VERSION = "dlq-normalizer-version"
# A consumer group's dead letters (the Avro event) also carry these.
DLQ_GROUP = "dlq-group"
DLQ_RECEIVER = "dlq-receiver"
DLQ_ATTEMPTS = "dlq-attempts"
_DLQ_PREFIX = "dlq-"
_SOURCE_HEADERS = (DLQ_SOURCE_TOPIC, DLQ_SOURCE_PARTITION, DLQ_SOURCE_OFFSET)
MAX_ERROR_MESSAGE = 2000

Headers = list[tuple[str, bytes]]


def dead_letter_headers(message: Message, error: BaseException, extra: Headers) -> Headers:
    """The failed record's own headers, then ``extra``, then why, where from and when.

    A record that is itself a dead letter (one redriven and failing again) keeps the
    source it names, and only this failure's other ``dlq-*`` headers.
    """
    own = message.headers() or []
    source = [(name, value) for name, value in own if name in _SOURCE_HEADERS] or [
        (DLQ_SOURCE_TOPIC, message.topic().encode()),
        (DLQ_SOURCE_PARTITION, str(message.partition()).encode()),
        (DLQ_SOURCE_OFFSET, str(message.offset()).encode()),
    ]
    return [
        *((name, value) for name, value in own if not name.startswith(_DLQ_PREFIX)),
        *extra,
        (DLQ_ERROR_CLASS, type(error).__name__.encode()),
        (DLQ_ERROR_MESSAGE, str(error)[:MAX_ERROR_MESSAGE].encode("utf-8", "replace")),
        *source,
        (DLQ_FAILED_AT, datetime.now(UTC).isoformat().encode()),
    ]


def dead_letter_source(headers: Headers | None) -> tuple[str, int, int] | None:
    """The raw record a dead letter names (``dlq-source-*``, the last of each), or None if it names none."""
    named = {name: value for name, value in headers or () if name in _SOURCE_HEADERS and value is not None}
    try:
        return (
            named[DLQ_SOURCE_TOPIC].decode("utf-8", "replace"),
            int(named[DLQ_SOURCE_PARTITION]),
            int(named[DLQ_SOURCE_OFFSET]),
        )
    except (KeyError, ValueError):
        return None


class LazyMapping(Mapping[str, str]):
    """The mapping ``make()`` returns, made when first read.

    Few ESPs' parsers look at a request header (Amazon SNS's, Resend's svix-id), so most
    records never pay for decoding (or lower-casing) a dozen of them.
    """

    __slots__ = ("_make", "_items")

    def __init__(self, make: Callable[[], dict[str, str]]):
        self._make = make
        self._items: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._items is None:
            self._items = self._make()
        return self._items

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"LazyMapping({self._mapping()!r})"


def http_headers(headers: Headers) -> dict[str, str]:
    """A raw record's ``http-*`` headers as the request's: name without the prefix -> text."""
    return {name[len(HTTP_PREFIX):]: _text(raw) for name, raw in headers if name.startswith(HTTP_PREFIX)}


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw is not None else ""


_KNOWN_HEADERS = frozenset({ESP, CONTENT_TYPE, RECEIVED_AT, REQUEST_ID, QUERY_STRING})


@dataclass(slots=True, kw_only=True)
class RawWebhook:
    """A raw record read back: everything the normalizer may use."""

    esp: str
    body: bytes
    content_type: str | None = None
    received_at: datetime | None = None
    request_id: str | None = None
    query_string: str = ""
    http_headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(cls, value: bytes | None, headers: Headers | None) -> "RawWebhook":
        headers = headers or []
        # The last of a repeated header wins, as it always has.
        known = {name: _text(raw) for name, raw in headers if name in _KNOWN_HEADERS}
        received_at = known.get(RECEIVED_AT)
        return cls(
            esp=known.get(ESP, ""),
            body=value or b"",
            content_type=known.get(CONTENT_TYPE),
            received_at=datetime.fromisoformat(received_at) if received_at else None,
            request_id=known.get(REQUEST_ID),
            query_string=known.get(QUERY_STRING, ""),
            http_headers=LazyMapping(partial(http_headers, headers)),
        )
