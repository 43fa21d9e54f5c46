"""What the fuzzers found, minimized: each was an exception other than NormalizeError, or a hang."""

import json

import pytest

from espstream import normalizer
from tests.support.fuzz.harness import check

MULTIPART = b'--b\r\nContent-Disposition: form-data; name="event"\r\n\r\ndelivered\r\n--b--\r\n'


@pytest.mark.parametrize(
    ("slug", "body", "content_type"),
    [
        ("amazon_ses", b"{}", "text/plain; charset=rot13"),
        ("amazon_ses", b"{}", "text/plain; charset=base64"),
        ("mailgun", MULTIPART, "multipart/form-data; boundary=b; charset=rot13"),
        ("mandrill", MULTIPART, "multipart/form-data; boundary=b; charset=hex"),
    ],
)
def test_a_charset_that_is_no_text_encoding_is_malformed(slug: str, body: bytes, content_type: str) -> None:
    # Python knows these codecs, but they turn bytes into bytes: decoding with them raised LookupError.
    with pytest.raises(normalizer.MalformedPayload, match="not"):
        normalizer.normalize(slug, body, content_type)


@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("sendgrid", b'[{"\\ud800": null}]'),  # a custom arg (metadata key)
        ("postmark", b'{"RecordType": "Delivery", "Recipient": "\\ud800@example.com"}'),
        ("mailjet", b'{"event": "open", "email": "a@example.com", "agent": "x\\udfff"}'),
        ("sparkpost", b'{"msys": {"message_event": {"type": "delivery", "rcpt_meta": {"\\udbff": 1}}}}'),
        ("postal", b'{"event": "MessageSent", "payload": {"message": {"to": "\\ud800@example.com"}}}'),
    ],
)
def test_an_unpaired_surrogate_in_a_text_field_is_malformed(slug: str, body: bytes) -> None:
    # JSON can spell one; Avro's UTF-8 strings cannot hold it: the event failed to encode.
    with pytest.raises(normalizer.MalformedPayload, match="surrogate"):
        normalizer.normalize(slug, body if slug != "sparkpost" else b"[" + body + b"]", "application/json")


def test_an_unpaired_surrogate_elsewhere_is_kept_in_esp_event() -> None:
    [event] = check("postmark", b'{"RecordType": "Delivery", "Recipient": "a@example.com", "Junk": "\\ud800"}')
    assert event.recipient == "a@example.com"
    assert event.esp_event["Junk"] == "\ud800"


@pytest.mark.parametrize("run", [".", "\\", '"\\'])
@pytest.mark.parametrize("slug", ["postal", "resend"])
def test_a_long_address_is_malformed_not_parsed_for_minutes(slug: str, run: str) -> None:
    # The standard library's addr-spec parser is quadratic: 80 000 dots took 52 s.
    address = run * (80_000 // len(run))
    body = {
        "postal": {"event": "MessageSent", "payload": {"status": "Sent", "message": {"to": address}}},
        "resend": {"type": "email.delivered", "created_at": "2024-01-01T00:00:00Z", "data": {"to": [address]}},
    }[slug]
    refused = check(slug, json.dumps(body).encode(), "application/json")
    assert isinstance(refused, normalizer.MalformedPayload) and "address over 998 characters" in str(refused)


def test_nested_comments_in_an_address_are_malformed_with_their_own_reason() -> None:
    # getaddresses() recursed to a RecursionError, reported as JSON nesting.
    body = {"event": "MessageSent", "payload": {"status": "Sent", "message": {"to": "(" * 5000 + "a@example.com"}}}
    refused = check("postal", json.dumps(body).encode(), "application/json")
    assert isinstance(refused, normalizer.MalformedPayload) and "address nested too deeply" in str(refused)


def test_an_address_of_ordinary_length_is_still_read() -> None:
    address = "a" * 900 + "@example.com"
    body = {"event": "MessageSent", "payload": {"status": "Sent", "message": {"to": f"Someone <{address}>"}}}
    [event] = check("postal", json.dumps(body).encode(), "application/json")
    assert event.recipient == address


def test_a_multipart_form_in_a_text_encoding_that_fails_on_one_byte_is_still_read() -> None:
    # The text-encoding probe decodes one byte; UTF-16 cannot, and is a text encoding all the same.
    check("mailgun", MULTIPART, "multipart/form-data; boundary=b; charset=utf-16")


@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("resend", {"type": "email.delivered", "created_at": "0001-01-01T00:00:00+14:00", "data": {"to": ["a@b.c"]}}),
        ("postmark", {"RecordType": "Delivery", "Recipient": "a@b.c", "DeliveredAt": "9999-12-31T23:59:59-14:00"}),
    ],
)
def test_a_timestamp_without_a_utc_date_is_malformed(slug: str, body: dict) -> None:
    # Its offset takes it past year 1 or 9999 in UTC: the Avro encoding raised OverflowError.
    refused = check(slug, json.dumps(body).encode(), "application/json")
    assert isinstance(refused, normalizer.MalformedPayload) and "out of range" in str(refused)


@pytest.mark.parametrize(
    ("slug", "body", "content_type"),
    [
        ("amazon_ses", b'{"Type": "SubscriptionConfirmation", "MessageId": "1"}', "text/plain; charset=utf\x00-8"),
        ("mailgun", MULTIPART, "multipart/form-data; boundary=b; charset=utf\x00-8"),
    ],
)
def test_a_charset_with_a_nul_character_is_an_unknown_charset(slug: str, body: bytes, content_type: str) -> None:
    # Found by atheris: codecs.lookup() raised ValueError ("embedded null character").
    assert isinstance(check(slug, body, content_type), list)


def test_an_unpaired_surrogate_in_mailjets_message_id_is_malformed() -> None:
    body = b'[{"event": "blocked", "time": 1498093527, "MessageID": "\\ud800", "email": "a@example.com"}]'
    refused = check("mailjet", body, "application/json")
    assert isinstance(refused, normalizer.MalformedPayload) and "surrogate" in str(refused)
