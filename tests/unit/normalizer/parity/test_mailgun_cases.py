"""Mailgun cases generated in code: many To headers of a rejected message through anymail and us.

Address parsing is what anymail delegates to the standard library; a fixture file per value would be noise.
"""

import pytest

from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours

MAILGUN_TO_HEADERS = [
    "Recipient Name <recipient@example.org>",
    "recipient@example.org",
    '"Last, First" <first.last@example.org>',
    "a@example.org, b@example.org",
    "Zoë <zoë@exämple.de>",
    '"quoted local"@example.org',
    '"quoted"@exämple.de',
    "zoë@",
    "=?utf-8?q?Zo=C3=AB?= <zoe@example.org>",
    "user@[192.168.0.1]",
    "a@b@example.org",
    "<user@example.org",
    "undisclosed-recipients:;",
    "bogus",
    "<>",
    " ",
    "",
]


@pytest.mark.parametrize("to", MAILGUN_TO_HEADERS)
def test_mailgun_rejected_recipient_comes_from_the_to_header_as_in_anymail(to: str) -> None:
    fixture = from_spec("mailgun", "rejected", {
        "description": f"rejected, To {to!r}",
        "body": {"event-data": {
            "event": "rejected", "timestamp": 1529704976.104692,
            "reject": {"reason": "Sandbox subdomains are for test purposes only."},
            "message": {"headers": {"to": to, "message-id": "20180622220256.1.B31A451A2E5422BB@example.org"}},
        }},
    })  # fmt: skip
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(fixture)
    assert same(ours.recipient, result.events[0].recipient)
