"""MailerSend values of many kinds through anymail and us: data.created_at and the morph record.

anymail reads created_at with Django's ``parse_datetime`` and takes the reject
reason, description and click url from whatever morph record comes.
"""

from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.fixtures import from_spec
from tests.support.parity.harness import assert_timestamp_as_anymails, run_anymail, run_ours


def _fixture(data: dict[str, Any]):
    body = {"type": "activity.hard_bounced", "data": {
        "id": "6643216f1c9a5b2e8d0b7c41", "type": "hard_bounced", "created_at": "2024-05-14T08:32:07.482000Z",
        "email": {"message": {"id": "6643216d5f0103a1c9d2e7b4"}, "recipient": {"email": "jane.doe@example.com"}},
        **data,
    }}  # fmt: skip
    return from_spec("mailersend", "case", {"description": f"hard_bounced with {data!r}", "body": body})


CREATED_AT = [
    "2024-05-14T08:32:07.482000Z",
    "2024-05-14T08:32:07Z",
    "2024-05-14T08:32:07.482913+02:00",
    "2024-05-14 08:32:07",
    "2024-5-4T8:32:07.5Z",
    "2024-05-14T08:32:07,123+05:30",
    "2024-05-14T08:32:07 -0730",
    "2024-05-14",
    "yesterday",
    "",
]


@pytest.mark.parametrize("created_at", CREATED_AT)
def test_created_at_is_read_as_anymail_reads_it(created_at: str) -> None:
    fixture = _fixture({"created_at": created_at})
    assert_timestamp_as_anymails(fixture)


@pytest.mark.parametrize("created_at", ["2024-13-14T08:32:07Z", 1715675527, ["2024-05-14T08:32:07Z"]], ids=repr)
def test_created_at_anymail_cannot_read_is_malformed(created_at: Any) -> None:
    fixture = _fixture({"created_at": created_at})
    assert run_anymail(fixture).error is not None
    with pytest.raises(normalizer.MalformedPayload, match="data.created_at"):
        run_ours(fixture)


MORPHS = [
    None,
    {},
    {"reason": "Mailbox full"},
    {"object": "recipient_bounce", "reason": "Mailbox full"},
    {"object": "recipient_bounce", "readable_reason": "Mailbox full", "reason": "552"},
    {"object": "recipient_bounce", "readable_reason": "", "reason": ""},
    {"object": "recipient_bounce", "readable_reason": None},
    {"object": "spam_complaint", "reason": None},
    {"object": "recipient_unsubscribe", "reason": "option_3", "readable_reason": "I get too many emails"},
    {"object": "click", "url": "https://example.com/"},
    {"object": None, "url": "https://example.com/"},
    {"object": "bounce_sync", "reason": 550},
    [],
    "recipient_bounce",
    42,
]


@pytest.mark.parametrize("morph", MORPHS, ids=repr)
def test_morph_details_are_anymails(morph: Any) -> None:
    fixture = _fixture({"morph": morph})
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    theirs = result.events[0]
    [ours] = run_ours(fixture)
    expected = (theirs.reject_reason, theirs.description, theirs.click_url)
    # Text fields are str: a numeric reason becomes its decimal text.
    expected = tuple(str(value) if isinstance(value, int) else value for value in expected)
    assert (ours.reject_reason, ours.description, ours.click_url) == expected
