"""The console in a real browser (headless Chromium) against a real stack: what an operator clicks and reads."""

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from espstream.embedded import EmbeddedBroker
from tests.integration.test_console import (
    BIG,
    ConsoleStack,
    bounced,
    delivered,
    indexed,
    opened,
    post,
    start_console_stack,
)
from tests.support.browser import chromium_page, screenshot
from tests.support.services import eventually


@pytest.fixture(scope="module")
def console_stack(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    yield from start_console_stack(broker, registry_url, tmp_path_factory.mktemp("console-browser"))


def test_an_operator_looks_up_a_message_and_redrives_a_dead_letter(console_stack: ConsoleStack, tmp_path: Path) -> None:
    message_id, bounced_id = str(uuid.uuid4()), str(uuid.uuid4())
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}@example.com", f"bob-{uuid.uuid4().hex[:6]}@example.com"
    post(console_stack, delivered(message_id, alice))
    post(console_stack, opened(message_id, alice))
    post(console_stack, bounced(bounced_id, bob))
    marker = uuid.uuid4().hex
    post(console_stack, f'{{"not json <script>alert("{marker}")</script>'.encode())  # unparseable: a dead letter
    fixable_id = str(uuid.uuid4())  # too big for this normalizer: a dead letter the console's redrive fixes
    post(console_stack, json.dumps({"RecordType": "Delivery", "MessageID": fixable_id, "Recipient": alice,
                                    "DeliveredAt": "2026-11-23T17:00:00Z", "Metadata": {"big": BIG}}).encode())
    indexed(console_stack, bounced_id, 1)

    with chromium_page(console_stack.console_url) as page:
        page.goto("/lookup")
        page.get_by_label("message id or recipient", exact=True).fill(message_id)
        page.get_by_role("button", name="Look up").click()
        rows = page.locator("table.timeline tr")
        assert [rows.nth(i).locator("td").nth(1).inner_text() for i in (1, 2)] == ["delivered", "opened"]
        assert page.get_by_text("2 events, last: opened").is_visible()

        page.goto(f"/lookup?q={bob}")
        assert page.locator("table.timeline td.type-bounced").inner_text() == "bounced"

        page.goto("/dead-letters/normalizer")
        eventually(lambda: page.reload() and page.get_by_role("cell", name="encode", exact=True).count() == 1)
        pending = page.locator("table.letters tr").count() - 1
        script_letter = page.locator("table.letters tr", has_text="MalformedPayload").last
        script_letter.get_by_role("link").click()
        assert f'<script>alert("{marker}")</script>' in page.locator("pre.letter").inner_text()
        assert page.locator("script").count() == 0  # shown as text, never made an element
        page.go_back()

        page.get_by_role("button", name=re.compile("Redrive all")).click()
        outcomes = page.locator("table.outcomes").inner_text()
        assert "normalized" in outcomes and "dead-lettered again" in outcomes
        page.get_by_role("link", name="The pending letters now").click()
        assert page.get_by_role("cell", name="encode", exact=True).count() == 0
        assert page.locator("table.letters tr").count() - 1 == pending - 1  # the unparseable ones came back, tried again
        malformed = page.locator("table.letters tr", has_text="MalformedPayload")
        assert "2" in [malformed.nth(i).locator("td").nth(5).inner_text() for i in range(malformed.count())]  # attempts
        screenshot(page, tmp_path, "console-dead-letters")

        page.goto(f"/lookup?q={fixable_id}")
        eventually(lambda: page.reload() and page.get_by_text("1 event, last: delivered").count() == 1)
        page.goto("/rates")
        assert page.locator("svg.chart").count() == 2
        screenshot(page, tmp_path, "console-rates")
