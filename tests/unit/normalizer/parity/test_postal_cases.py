"""Postal: many timestamps and To addresses through anymail and us.

anymail cuts the timestamp with ``int()`` and reads the recipient with its
``parse_single_address``; both are generated here value by value.
"""

from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import same
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import run_anymail, run_ours


def _sent(timestamp: Any = 1606753101.354368, to: Any = "recipient@example.com") -> dict[str, Any]:
    return {
        "event": "MessageSent",
        "timestamp": timestamp,
        "uuid": "58e8d7ee-2cd5-4db2-9af3-3f436105795a",
        "payload": {
            "message": {"id": "1563", "direction": "outgoing", "to": to, "tag": None},
            "status": "Sent",
            "details": "Message for recipient@example.com accepted",
            "output": "250 2.0.0 OK",
        },
    }


def _fixture(body: dict[str, Any]):
    return from_spec("postal", "case", {"description": "generated", "body": body})


# Values anymail reads: ours must be the same instant (or None).
TIMESTAMPS = [
    1606753101.961181,
    1606753101,
    -1.5,  # int() cuts toward zero
    0.5,  # a truthy fraction of a second: the epoch
    0,
    None,
    "",
    "1606753101",
    " 1606753101 ",
    "1_606_753_101",
    True,  # a JSON true is int 1 for anymail
    False,
    [],
    {},
]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=repr)
def test_timestamps_anymail_reads_are_read_alike(value: Any) -> None:
    fixture = _fixture(_sent(timestamp=value))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(fixture)
    theirs = result.events[0].timestamp
    assert same(ours.timestamp, theirs), f"ours {ours.timestamp!r}, anymail {theirs!r}"


# Decimal text, on which anymail's int() crashes: read as anymail reads the number it spells.
DECIMAL_TEXTS = ["1606753101.961181", "1606753101.0", "-1.5", "1.6067531e9", "0.5"]


@pytest.mark.parametrize("text", DECIMAL_TEXTS)
def test_decimal_text_is_read_as_anymail_reads_the_number(text: str) -> None:
    assert run_anymail(_fixture(_sent(timestamp=text))).error is not None
    as_number = run_anymail(_fixture(_sent(timestamp=float(text))))
    [ours] = run_ours(_fixture(_sent(timestamp=text)))
    assert same(ours.timestamp, as_number.events[0].timestamp)


NOT_TIMESTAMPS = ["yesterday", "nan", "inf", "2020-11-30T16:18:21Z", 1e20, 10**30, [1606753101], {"seconds": 1}]


@pytest.mark.parametrize("value", NOT_TIMESTAMPS, ids=repr)
def test_what_anymail_crashes_on_is_malformed(value: Any) -> None:
    fixture = _fixture(_sent(timestamp=value))
    assert run_anymail(fixture).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="timestamp"):
        run_ours(fixture)


TO_VALUES = [
    "recipient@example.com",
    "Recipient Name <recipient@example.com>",
    '"Smith, Zoë" <zoe.smith@example.com>',
    "a@example.com, b@example.com",
    "zoë@exämple.de",
    '"quoted local"@example.org',
    '"quoted"@exämple.de',
    "zoë@",
    "=?utf-8?q?Zo=C3=AB?= <zoe@example.org>",
    "user@[192.168.0.1]",
    "a@b@example.org",
    "<user@example.org",
    "bogus",
    "<>",
    " ",
    "",
    "line\nbreak@example.com",
    "undisclosed-recipients:;",
    ",",
    # anymail parses the text of what is not text: str() of a list, an object, a number.
    ["recipient@example.com"],
    ["a@example.com", "b@example.com"],
    [],
    [None],
    {"keyed@example.com": 1},
    5,
    1.5,
    True,
]


@pytest.mark.parametrize("to", TO_VALUES, ids=repr)
def test_recipient_comes_from_to_as_in_anymail(to: Any) -> None:
    fixture = _fixture(_sent(to=to))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    [ours] = run_ours(fixture)
    assert same(ours.recipient, result.events[0].recipient)
