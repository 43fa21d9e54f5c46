"""What the benchmarks send: realistic Postmark webhook bodies and the raw records the gateway makes of them."""

import base64
import json
import uuid
from collections.abc import Iterator

from starlette.requests import Request

from espstream import __version__
from espstream.gateway.app import _record_headers
from espstream.schemas import raw

ESP = "postmark"
WEBHOOK_PATH = f"/webhooks/{ESP}/tracking/"
USER, PASSWORD = "postmark", "bench-secret-not-for-production"
USER_AGENT = "Postmark"


def basic_auth_header() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _bounce(message_id: str, number: int) -> dict:
    # Postmark's documented Bounce webhook, with our own ids.
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807 - number,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "welcome",
        "MessageID": message_id,
        "Metadata": {"customer_id": str(100000 + number % 9000), "campaign": "2026-11-onboarding"},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 unknown user",
        "Email": f"user{number}@example.com",
        "From": "sender@example.com",
        "BouncedAt": "2026-11-23T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Welcome to Example",
    }


def _delivery(message_id: str, number: int) -> dict:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": f"user{number}@example.com",
        "Tag": "welcome",
        "DeliveredAt": "2026-11-23T16:33:54.9070259Z",
        "Details": "smtp;250 2.0.0 OK 1700757234 d75a77b69052e-4282ee4a1c8si123456qtx.410 - gsmtp",
        "Metadata": {"customer_id": str(100000 + number % 9000), "campaign": "2026-11-onboarding", "plan": "pro"},
    }


def _open(message_id: str, number: int) -> dict:
    return {
        "RecordType": "Open",
        "MessageStream": "outbound",
        "Metadata": {"customer_id": str(100000 + number % 9000), "campaign": "2026-11-onboarding"},
        "FirstOpen": True,
        "Recipient": f"user{number}@example.com",
        "MessageID": message_id,
        "ReceivedAt": "2026-11-23T17:01:12Z",
        "Platform": "WebMail",
        "ReadSeconds": 16,
        "Tag": "welcome",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        "OS": {"Name": "Windows 10", "Family": "Windows", "Company": "Microsoft Corporation"},
        "Client": {"Name": "Chrome 120.0", "Family": "Chrome", "Company": "Google"},
        "Geo": {"IP": "188.2.95.4", "City": "Novi Sad", "Country": "Serbia", "CountryISOCode": "RS"},
    }


def _click(message_id: str, number: int) -> dict:
    return {
        "RecordType": "Click",
        "MessageStream": "outbound",
        "Metadata": {"customer_id": str(100000 + number % 9000), "campaign": "2026-11-onboarding"},
        "Recipient": f"user{number}@example.com",
        "MessageID": message_id,
        "ReceivedAt": "2026-11-23T17:02:40Z",
        "Platform": "Desktop",
        "ClickLocation": "HTML",
        "OriginalLink": f"https://example.com/welcome?customer={number}",
        "Tag": "welcome",
        "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "OS": {"Name": "OS X 14.1", "Family": "OS X", "Company": "Apple Computer, Inc."},
        "Client": {"Name": "Safari 17.1", "Family": "Safari", "Company": "Apple Inc."},
    }


_KINDS = (_delivery, _open, _bounce, _click)


def message_id(number: int) -> str:
    """The MessageID of webhook ``number``: unique per number, and what its event's ``message_id`` is."""
    return str(uuid.UUID(int=(number * 0x9E3779B97F4A7C15) % (1 << 128)))


def postmark_body(number: int = 0) -> bytes:
    """One webhook body, 500-720 bytes; ``number`` picks the record type and makes the ids unique."""
    return json.dumps(_KINDS[number % len(_KINDS)](message_id(number), number), ensure_ascii=False).encode()


def gateway_request_body() -> bytes:
    """The body wrk posts: one bounce, about 600 bytes."""
    return postmark_body(2)


def _request(body: bytes) -> Request:
    """The ASGI request an ESP's POST becomes, as uvicorn hands it to the gateway."""
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": WEBHOOK_PATH,
            "query_string": b"",
            "client": ("127.0.0.1", 40000),
            "headers": [
                (b"host", b"127.0.0.1:8000"),
                (b"user-agent", USER_AGENT.encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"authorization", basic_auth_header().encode()),
            ],
        }
    )


def raw_records(count: int) -> Iterator[tuple[bytes, raw.Headers]]:
    """``count`` raw records (value, headers) exactly as the gateway writes them."""
    static = [(raw.GATEWAY_VERSION, __version__.encode())]
    for number in range(count):
        body = postmark_body(number)
        yield body, _record_headers(ESP, _request(body), uuid.uuid4().hex) + static
