"""`espstream console` against a real stack: its pages as a user reads them, over real HTTP.

Real processes (gateway, normalizer, console) on the session's broker and
registry, each test with its own message ids. The normalizer runs with a body
limit too low for one webhook (its events cannot be written: a dead letter);
the console runs with the default limit, so its redrive is the fix.
"""

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import httpx
import pytest

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.integration.test_pipeline import Pipeline, pipeline_env
from tests.support.services import Service, eventually

SMALL_BODY_LIMIT = 1024  # the normalizer's: an event may be 256 KiB over it
BIG = "x" * 280_000  # a webhook whose event is over that


@dataclass
class ConsoleStack(Pipeline):
    console_url: str = ""

    def page(self, path: str, client: httpx.Client | None = None, **params: str) -> httpx.Response:
        response = (client or httpx).get(f"{self.console_url}{path}", params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response

    def text(self, path: str, **params: str) -> str:
        """The page as a user reads it: its text, tags dropped, entities decoded."""
        return visible_text(self.page(path, **params).text)


def visible_text(html: str) -> str:
    html = re.sub(r"<(style|title)>.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture(scope="module")
def console_stack(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    yield from start_console_stack(broker, registry_url, tmp_path_factory.mktemp("console"))


def start_console_stack(broker: EmbeddedBroker, registry_url: str, tmp: Path) -> Iterator[ConsoleStack]:
    env = {**pipeline_env(broker.bootstrap_servers, registry_url), "ESPSTREAM_CONSOLE_HOST": "127.0.0.1",
           "ESPSTREAM_CONSOLE_PORT": str(free_port()), "ESPSTREAM_CONSOLE_INDEX_INTERVAL_SECONDS": "0.2"}
    ensure_topics(settings_from_env(env))
    port, console_port = int(env["ESPSTREAM_GATEWAY_PORT"]), int(env["ESPSTREAM_CONSOLE_PORT"])
    gateway = Service(["gateway"], env, tmp / "gateway.log").start(port)
    normalizer = Service(["normalize"], {**env, "ESPSTREAM_MAX_BODY_BYTES": str(SMALL_BODY_LIMIT)}, tmp / "normalizer.log").start()
    console = Service(["console"], env, tmp / "console.log").start(console_port)
    user, password = env["ESPSTREAM_WEBHOOK_SECRET"].split(":", 1)
    stack = ConsoleStack(env, f"http://127.0.0.1:{port}", (user, password), broker.bootstrap_servers, normalizer, tmp,
                         console_url=f"http://127.0.0.1:{console_port}")
    eventually(lambda: httpx.get(f"{stack.console_url}/readyz").status_code == 200)
    try:
        yield stack
    finally:
        console.stop()
        gateway.stop()
        normalizer.stop()


def postmark(record_type: str, message_id: str, recipient: str, **fields: object) -> bytes:
    address = {"Email": recipient} if record_type == "Bounce" else {"Recipient": recipient}
    return json.dumps({"RecordType": record_type, "MessageID": message_id, "MessageStream": "outbound", **address, **fields}).encode()


def delivered(message_id: str, recipient: str) -> bytes:
    return postmark("Delivery", message_id, recipient, DeliveredAt="2026-11-23T16:33:54Z", Details="250 OK")


def opened(message_id: str, recipient: str) -> bytes:
    return postmark("Open", message_id, recipient, ReceivedAt="2026-11-23T16:40:00Z", UserAgent="Mail/1.0")


def bounced(message_id: str, recipient: str) -> bytes:
    return postmark("Bounce", message_id, recipient, Type="HardBounce", BouncedAt="2026-11-23T16:35:00Z",
                    Description="The server was unable to deliver your message", Details="smtp;550 5.1.1 no such user")


def post(stack: ConsoleStack, body: bytes) -> None:
    assert stack.post("postmark", body).status_code == 200


def indexed(stack: ConsoleStack, term: str, count: int) -> str:
    """The lookup page of ``term`` once its ``count`` events are in the index."""
    return eventually(lambda: _events_in(text := stack.text("/lookup", q=term)) >= count and text)


def _events_in(text: str) -> int:
    return sum(int(n) for n in re.findall(r"(\d+) events?, last:", text))


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def test_a_message_lookup_shows_its_timeline_in_order_and_a_recipient_lookup_each_of_its_messages(console_stack: ConsoleStack) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    recipient = f"alice-{uuid.uuid4().hex[:8]}@example.com"
    post(console_stack, opened(first, recipient))  # arrives first, happened later
    post(console_stack, delivered(first, recipient))
    post(console_stack, bounced(second, recipient))

    text = indexed(console_stack, first, 2)
    assert f"postmark message {first}" in text
    timeline = text[text.index(f"postmark message {first}"):]
    assert "2 events, last: opened" in timeline
    assert timeline.index("2026-11-23T16:33:54.000+00:00 delivered") < timeline.index("2026-11-23T16:40:00.000+00:00 opened")
    assert second not in text

    by_recipient = indexed(console_stack, recipient.upper(), 3)
    assert by_recipient.index(f"message {first}") < by_recipient.index(f"message {second}")  # the latest event first
    assert f"bounced {recipient} bounced The server was unable to deliver your message smtp;550 5.1.1 no such user" in by_recipient
    assert "No events of" in console_stack.text("/lookup", q=str(uuid.uuid4()))


def test_recent_events_are_newest_first_and_filtered_by_esp_and_type(console_stack: ConsoleStack) -> None:
    message_id = str(uuid.uuid4())
    recipient = f"recent-{uuid.uuid4().hex[:8]}@example.com"
    post(console_stack, delivered(message_id, recipient))
    post(console_stack, opened(message_id, recipient))

    text = eventually(lambda: (t := console_stack.text("/events")).count(message_id) == 2 and t)
    assert text.index(f"opened {recipient}") < text.index(f"delivered {recipient}")
    only_opens = console_stack.text("/events", esp="postmark", type="opened")
    assert f"opened {recipient}" in only_opens and f"delivered {recipient}" not in only_opens
    assert message_id not in console_stack.text("/events", esp="mailgun")


def test_a_dead_letter_body_is_shown_escaped_and_no_script_may_run(console_stack: ConsoleStack) -> None:
    marker = uuid.uuid4().hex
    body = f'not json <script>alert("{marker}")</script> <img src=x onerror=alert(1)>'.encode()
    post(console_stack, body)

    listing = eventually(lambda: (r := console_stack.page("/dead-letters/normalizer")).text.count("MalformedPayload") and r)
    letters = re.findall(r'href="(/dead-letters/normalizer/\d+/\d+)"', listing.text)
    page = next(p for link in letters if marker in (p := console_stack.page(link)).text)
    assert "<script>" not in page.text and "<img" not in page.text
    assert f"&lt;script&gt;alert(&#34;{marker}&#34;)&lt;/script&gt;" in page.text
    assert "dlq-error-class: MalformedPayload" in visible_text(page.text)
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_a_redrive_needs_the_session_s_token_and_then_normalizes_the_fixed_letter(console_stack: ConsoleStack) -> None:
    message_id = str(uuid.uuid4())
    body = json.dumps({"RecordType": "Delivery", "MessageID": message_id, "Recipient": "big@example.com",
                       "DeliveredAt": "2026-11-23T16:33:54Z", "Metadata": {"big": BIG}}).encode()
    post(console_stack, body)
    with httpx.Client(timeout=60) as browser:
        listing = eventually(lambda: " encode " in visible_text((r := console_stack.page("/dead-letters/normalizer", browser)).text) and r)
        assert "Redrive all" in listing.text
        url = f"{console_stack.console_url}/dead-letters/normalizer/redrive"

        assert browser.post(url, data={"csrf_token": "0" * 64}).status_code == 403
        assert httpx.post(url, data={"csrf_token": csrf_token(listing.text)}, timeout=30).status_code == 403  # no cookie
        cross_site = browser.post(url, data={"csrf_token": csrf_token(listing.text)}, headers={"Origin": "http://evil.example"})
        assert cross_site.status_code == 403
        assert "encode" in visible_text(console_stack.page("/dead-letters/normalizer", browser).text)  # nothing was redriven

        redriven = browser.post(url, data={"csrf_token": csrf_token(listing.text)})
        assert redriven.status_code == 200, redriven.text
        assert "normalized" in visible_text(redriven.text)
        after = visible_text(console_stack.page("/dead-letters/normalizer", browser).text)
    assert " encode " not in after
    text = indexed(console_stack, message_id, 1)
    assert "1 event, last: delivered" in text


def test_the_rates_page_draws_each_esp_s_events_and_the_unknown_share(console_stack: ConsoleStack) -> None:
    message_id = str(uuid.uuid4())
    post(console_stack, postmark("SomethingNew", message_id, "new@example.com"))
    indexed(console_stack, message_id, 1)
    response = console_stack.page("/rates", hours="1")
    assert response.text.count("<svg") == 2
    assert re.search(r"<rect [^>]*><title>\d\d:\d\d postmark: \d+</title></rect>", response.text)
    assert re.search(r"<title>\d\d:\d\d: [\d.]+% unknown \(\d+ of \d+\)</title>", response.text)
    row = re.search(r"<tr><td>postmark</td><td>([\d,]+)</td><td>[\d.]+</td><td>([\d,]+)</td>", response.text)
    assert row and int(row.group(2)) >= 1
    assert console_stack.page("/rates", hours="24").text.count("<svg") == 2


def test_until_the_index_has_read_the_topic_recent_events_are_read_from_the_topic(console_stack: ConsoleStack) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from espstream.console.index import EventIndex
    from espstream.console.recent import RecentEvents
    from espstream.console.settings import ConsoleSettings
    from espstream.schemas.avro import EventDeserializer

    message_id = str(uuid.uuid4())
    post(console_stack, delivered(message_id, "early@example.com"))
    indexed(console_stack, message_id, 1)
    settings = ConsoleSettings(**settings_from_env(console_stack.env).model_dump())
    decode = EventDeserializer(SchemaRegistryClient(settings.registry()))
    recent = RecentEvents(settings, decode, EventIndex(settings, decode))  # an index that never read anything
    try:
        assert message_id in [event.message_id for event in recent.newest(5)]
        assert message_id in [event.message_id for event in recent.newest(5)]  # the reader, reused, still finds the end
    finally:
        recent.close()


def test_a_letter_discarded_with_a_reason_is_no_longer_pending(console_stack: ConsoleStack) -> None:
    marker = uuid.uuid4().hex
    post(console_stack, f"never json {marker}".encode())
    with httpx.Client(timeout=60) as browser:
        def letter_page() -> httpx.Response | None:
            listing = console_stack.page("/dead-letters/normalizer", browser)
            for link in re.findall(r'href="(/dead-letters/normalizer/\d+/\d+)"', listing.text):
                if marker in (page := console_stack.page(link, browser)).text:
                    return page
            return None

        page = eventually(letter_page, timeout=60)
        action = re.search(r'action="(/dead-letters/normalizer/\d+/\d+/discard)"', page.text).group(1)
        url = f"{console_stack.console_url}{action}"
        assert browser.post(url, data={"csrf_token": csrf_token(page.text), "reason": " "}).status_code == 400
        assert browser.post(url, data={"csrf_token": "0" * 64, "reason": "spam"}).status_code == 403
        discarded = browser.post(url, data={"csrf_token": csrf_token(page.text), "reason": "a test body, never JSON"})
        assert discarded.status_code == 200, discarded.text
        assert "discarded a test body, never JSON" in visible_text(discarded.text)
        assert letter_page() is None
        again = browser.post(url, data={"csrf_token": csrf_token(page.text), "reason": "twice"})
        assert again.status_code == 409 and "redriven or discarded already" in again.text
