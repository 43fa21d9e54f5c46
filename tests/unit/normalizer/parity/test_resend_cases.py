"""Resend values of many kinds through anymail and us: the first "to" address and created_at.

anymail parses the recipient with its own address parser (on the standard
library's) and the timestamp with ``datetime.fromisoformat``; these cases check
we read each value the same way.
"""

from typing import Any

import pytest

from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import assert_timestamp_as_anymails, run_anymail, run_ours


def _fixture(body: dict[str, Any]):
    return from_spec("resend", "case", {
        "description": f"email.delivered {body!r}",
        "headers": {"svix-id": "msg_2gJ8lZ1yJv5pGQqB7mXo9w3Kd1E"},
        "body": body,
    })  # fmt: skip


def _delivered(created_at: Any = "2024-05-14T08:32:07.482Z", to: Any = ("jane.doe@example.com",)) -> dict[str, Any]:
    return {
        "type": "email.delivered",
        "created_at": created_at,
        "data": {"email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c", "to": list(to) if isinstance(to, tuple) else to},
    }


TO_VALUES = [
    ["Jane Doe <jane.doe@example.com>", "john@example.org"],
    ["jane.doe@example.com"],
    ['"Doe, Jane" <jane.doe@example.com>'],
    ["jane.doe@example.com, john@example.org"],
    ["Zoë <zoë@exämple.de>"],
    ['"quoted local"@example.org'],
    ['"quoted"@exämple.de'],
    ["zoë@"],
    ["=?utf-8?q?Zo=C3=AB?= <zoe@example.org>"],
    ["user@[192.168.0.1]"],
    ["a@b@example.org"],
    ["<user@example.org"],
    ["undisclosed-recipients:;"],
    ["bogus"],
    ["<>"],
    [" "],
    [""],
    [],
    [None],
    [123],
    [True],
    [["jane.doe@example.com"]],
    [{"email": "jane.doe@example.com"}],
    "jane.doe@example.com",
    "é",
    {"0": "jane.doe@example.com"},
    None,
    42,
]


@pytest.mark.parametrize("to", TO_VALUES, ids=repr)
def test_recipient_is_the_first_to_address_as_anymail_reads_it(to: Any) -> None:
    fixture = _fixture(_delivered(to=to))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(fixture)
    assert same(ours.recipient, result.events[0].recipient), f"ours {ours.recipient!r}, anymail {result.events[0].recipient!r}"


CREATED_AT = [
    "2024-05-14T08:32:07.482Z",
    "2024-05-14T08:32:07Z",
    "2024-05-14T08:32:07.482913+02:00",
    "2024-05-14T08:32:07.482",
    "2024-05-14 08:32:07Z",
    "2024-05-14",
    "20240514T083207Z",
    "2024-W20-2T08:32:07Z",
    "2024-05-14T08:32:07.1234567Z",
    "2024-05-14T08:32:07ZZ",
    "Tue, 14 May 2024 08:32:07 GMT",
    "1715675527",
    "",
    "2024-02-30T10:00:00Z",
    "2024-05-14T25:00:00Z",
]


@pytest.mark.parametrize("created_at", CREATED_AT)
def test_created_at_is_read_as_anymail_reads_it(created_at: str) -> None:
    fixture = _fixture(_delivered(created_at=created_at))
    assert_timestamp_as_anymails(fixture)


HEADER_LISTS = [
    [{"name": "X-Tags", "value": '["a", "b"]'}, {"name": "X-Metadata", "value": '{"k": "v"}'}],
    [{"name": "x-TAGS", "value": '"single"'}],
    [{"name": "X-Tags", "value": "null"}],
    [{"name": "X-Tags", "value": "[]"}, {"name": "X-Tags", "value": "not json"}],
    [{"name": "X-Tags", "value": 7}, {"name": "X-Metadata", "value": ["k"]}],
    [{"name": "X-Metadata", "value": '{"a": 1}'}, {"name": "X-Metadata", "value": "{}"}],
    [{"name": "Reply-To", "value": "r@example.org"}],
    [],
    {},
    "",
]


@pytest.mark.parametrize("headers", HEADER_LISTS, ids=repr)
def test_tags_and_metadata_come_from_headers_as_in_anymail(headers: Any) -> None:
    body = _delivered()
    body["data"]["headers"] = headers
    fixture = _fixture(body)
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    theirs = result.events[0]
    [ours] = run_ours(fixture)
    # Departure: tags is always a list of str.
    expected_tags = [] if theirs.tags is None else [theirs.tags] if isinstance(theirs.tags, str) else theirs.tags
    assert (ours.tags, ours.metadata) == (expected_tags, theirs.metadata)
