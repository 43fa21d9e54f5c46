"""Amazon SES: many values of one field through anymail and us (like test_postmark_cases.py).

The SNS Timestamp, the X-Tag / X-Metadata headers SES copies from the sent
message, the parts of a bounce's description, and the body's charset.
"""

import base64
import json
from typing import Any

import pytest

from espstream import normalizer
from tests.support.parity.compare import anymail_fields, assert_same_events
from tests.support.parity.fixtures import Fixture, from_spec
from tests.support.parity.harness import assert_timestamp_as_anymails, run_anymail, run_ours

SNS_MESSAGE_ID = "22d7b0a4-1c2e-5f3a-9b8c-7d6e5f4a3b2c"
SES_MESSAGE_ID = "0100018f4c8a1a2b-6a3c1f0e-2b8d-4c5e-9f1a-3e7b2d4c6a8f-000000"


def _sns_body(ses_event: dict[str, Any], timestamp: Any = "2024-05-06T07:08:09.123Z") -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": SNS_MESSAGE_ID,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-tracking",
        "Message": json.dumps(ses_event),
        "Timestamp": timestamp,
    }


def _send_event(headers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "eventType": "Send",
        "mail": {"messageId": SES_MESSAGE_ID, "destination": ["recipient@example.com"], "headers": headers},
        "send": {},
    }


def _fixture(description: str, body: dict[str, Any]) -> Fixture:
    return from_spec("amazon_ses", "case", {
        "description": description,
        "content_type": "text/plain; charset=UTF-8",
        "headers": {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": SNS_MESSAGE_ID},
        "body": body,
    })  # fmt: skip


SNS_TIMESTAMPS = [
    "2024-05-06T07:08:09.123Z",
    "2024-05-06T07:08:09Z",
    "2024-05-06T07:08:09.1234567Z",
    "2024-05-06T09:08:09.123+02:00",
    "2024-5-6T7:08:09.5Z",  # Django's fallback pattern
    "2024-05-06 07:08Z",
    "2024-05-06T07:08:09 -0730",
    "20240506T070809Z",
    "2024-05-06",
    "2024-05-06T07:08:09.123",  # no offset: naive for anymail
    "2024-02-30T07:08:09Z",  # impossible date: anymail catches the ValueError
    "2024-05-06T25:00:00Z",
    "2024-05-06T07:08:09 +24:00",
    "1714979289",
    "yesterday",
    "",
]


@pytest.mark.parametrize("value", SNS_TIMESTAMPS)
def test_sns_timestamps_are_read_as_anymail_reads_them(value: str) -> None:
    fixture = _fixture(f"Timestamp {value!r}", _sns_body(_send_event([]), timestamp=value))
    assert_timestamp_as_anymails(fixture)


X_METADATA_VALUES: list[Any] = [
    '{"order_id": "A-10023", "customer": 4711}',
    "{}",
    '{"nested": {"list": [1, 2.5, null, true]}, "ünïcode": "Zoë 📬"}',
    '  {"padded": true}  ',
    '{"nan": NaN}',
    "null",
    '["a", "b"]',
    '"text"',
    "42",
    "true",
    "not json",
    "",
    '{"a": 1}{"b": 2}',
    '\ufeff{"bom": 1}',
    42,
    None,
    {"already": "an object"},
    ["a"],
]


@pytest.mark.parametrize("value", X_METADATA_VALUES)
def test_x_metadata_header_values_give_anymails_metadata(value: Any) -> None:
    headers = [{"name": "X-Metadata", "value": '{"earlier": "header"}'}, {"name": "X-Metadata", "value": value}]
    fixture = _fixture(f"X-Metadata {value!r}", _sns_body(_send_event(headers)))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    theirs = result.events[0].metadata
    if theirs is not None and not isinstance(theirs, dict):
        # anymail passes a JSON list, text or number through as metadata.
        with pytest.raises(normalizer.MalformedPayload, match="X-Metadata header is not an object"):
            run_ours(fixture)
        return
    assert_same_events(run_ours(fixture), [anymail_fields(event, result.esp_name) for event in result.events], repr(value))


X_TAG_VALUES: list[Any] = ["welcome", "", "Bestellbestätigung", "  spaced  ", None, 7, 2.5, True, ["a"], {"a": 1}]


@pytest.mark.parametrize("value", X_TAG_VALUES)
def test_x_tag_header_values(value: Any) -> None:
    headers = [{"name": "X-Tag", "value": "first"}, {"name": "x-tag", "value": value}]
    fixture = _fixture(f"X-Tag {value!r}", _sns_body(_send_event(headers)))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    assert result.events[0].tags == ["first", value]
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        with pytest.raises(normalizer.MalformedPayload, match="X-Tag header is not text"):
            run_ours(fixture)
        return
    [ours] = run_ours(fixture)
    # Tags are str: a null tag is dropped, a number becomes its text.
    assert ours.tags == ["first"] + ([] if value is None else [str(value)])


BOUNCE_KIND_VALUES: list[Any] = ["Permanent", "", "Undetermined", None, 5, 2.5, True, ["General"], {"sub": "type"}]


@pytest.mark.parametrize("value", BOUNCE_KIND_VALUES)
def test_bounce_description_is_formatted_as_anymail_formats_it(value: Any) -> None:
    ses_event = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": value,
            "bounceSubType": value,
            "bouncedRecipients": [{"emailAddress": "jane@example.com"}],
        },
        "mail": {"messageId": SES_MESSAGE_ID, "destination": ["jane@example.com"]},
    }
    fixture = _fixture(f"bounceType {value!r}", _sns_body(ses_event))
    result = run_anymail(fixture)
    assert result.events is not None, repr(result.error)
    assert_same_events(run_ours(fixture), [anymail_fields(event, result.esp_name) for event in result.events], repr(value))


# Non-ASCII unescaped in the body, also inside Message, so that the charset matters.
_SEND = json.dumps(
    {**_sns_body({}), "Message": json.dumps(_send_event([{"name": "X-Tag", "value": "Zoë"}]), ensure_ascii=False)},
    ensure_ascii=False,
)

# Content type -> body bytes: anymail decodes the body in the request's charset (default UTF-8).
ENCODED_BODIES: dict[str, tuple[str | None, bytes]] = {
    "SNS's own": ("text/plain; charset=UTF-8", _SEND.encode("utf-8")),
    "JSON, no charset": ("application/json", _SEND.encode("utf-8")),
    "no content type": (None, _SEND.encode("utf-8")),
    "quoted charset": ('text/plain; charset="utf-8"', _SEND.encode("utf-8")),
    "Latin-1": ("text/plain; charset=ISO-8859-1", _SEND.encode("latin-1")),
    "Latin-1 bytes sent as UTF-8": ("text/plain; charset=UTF-8", _SEND.encode("latin-1")),
    "UTF-16": ("text/plain; charset=utf-16", _SEND.encode("utf-16")),
    "UTF-16 without charset": ("text/plain", _SEND.encode("utf-16")),
    "unknown charset": ("text/plain; charset=x-no-such-charset", _SEND.encode("utf-8")),
    "UTF-8 BOM": ("text/plain; charset=UTF-8", b"\xef\xbb\xbf" + _SEND.encode("utf-8")),
    "UTF-8 BOM, utf-8-sig": ("text/plain; charset=utf-8-sig", b"\xef\xbb\xbf" + _SEND.encode("utf-8")),
    "RFC 2231 charset": ("text/plain; charset*=utf-8''latin-1", _SEND.encode("latin-1")),
    "RFC 2231 charset, the value's charset left out": ("text/plain; charset*=''latin-1", _SEND.encode("latin-1")),
    "RFC 2231 charset, continued": ("text/plain; charset*0=latin; charset*1=-1", _SEND.encode("latin-1")),
}


@pytest.mark.parametrize(("content_type", "body"), ENCODED_BODIES.values(), ids=ENCODED_BODIES.keys())
def test_body_charset_is_read_as_anymail_reads_it(content_type: str | None, body: bytes) -> None:
    fixture = from_spec("amazon_ses", "charset", {
        "description": f"body as {content_type}",
        "content_type": content_type,
        "headers": {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": SNS_MESSAGE_ID},
        "body_base64": base64.b64encode(body).decode("ascii"),
    })  # fmt: skip
    result = run_anymail(fixture)
    if result.error is not None:
        with pytest.raises(normalizer.MalformedPayload, match="not valid JSON"):
            run_ours(fixture)
        return
    assert_same_events(run_ours(fixture), [anymail_fields(event, result.esp_name) for event in result.events], content_type)
