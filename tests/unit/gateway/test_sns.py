"""Amazon SNS signatures (amazon_ses): messages signed as AWS documents, certificates served over real loopback HTTP.

The tests sign with an RSA key and a self-signed certificate they generate, and
build the string to sign themselves, from the AWS documentation ("Verifying the
signatures of Amazon SNS messages"), independently of the gateway's code. The
gateway's own fetch runs unchanged; only its connection to
https://sns.<region>.amazonaws.com is routed to a loopback HTTP server that
serves the certificate and answers SubscribeURL requests.
"""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from espstream.gateway.signatures.amazon_ses import (
    FetchFailed,
    SignatureUnavailable,
    SnsVerifier,
    default_fetch,
)
from espstream.gateway.signatures.base import SignatureError, SignedRequest
from tests.support.sns import (
    CERT_PATH,
    OTHER_TOPIC,
    REGION,
    SES_EVENT,
    TOPIC,
    FakeSnsHost,
    Route,
    Signer,
    aws_time,
    confirmation,
    loopback_fetch,
    make_signer,
    notification,
    refused,
    request,
    serve,
    sign,
    verifier,
)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Amazon SES Email Event Notification"])
def test_signed_notifications_are_accepted(
    sns_host: FakeSnsHost, sns_signer: Signer, version: str, subject: str | None
) -> None:
    check = verifier(sns_host)
    asyncio.run(check.verify(request(sign(notification(subject=subject), sns_signer, version))))
    assert sns_host.requests == [(f"sns.{REGION}.amazonaws.com", CERT_PATH)]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_signed_confirmations_are_accepted(sns_host: FakeSnsHost, sns_signer: Signer, version: str, kind: str) -> None:
    asyncio.run(verifier(sns_host).verify(request(sign(confirmation(kind), sns_signer, version))))


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        ("text/plain; charset=UTF-8", True),
        ("text/plain; charset=utf8", True),
        ("text/plain", True),
        ("text/plain; charset=no-such-codec", True),  # ignored, as anymail and the normalizer ignore it
        ("text/plain; charset=utf-7", False),
        ("text/plain; charset=iso-8859-1", False),
        ("text/plain; charset=utf-16", False),
        # RFC 2231, as Django reads it for anymail and the normalizer: Latin-1, with or without the value's charset.
        ("text/plain; charset*=''latin-1", False),
        ("text/plain; charset*=utf-8''latin-1", False),
        ("text/plain; charset*=''utf-8", True),
    ],
)
def test_only_utf8_bodies_are_accepted(sns_host: FakeSnsHost, sns_signer: Signer, content_type: str, accepted: bool) -> None:
    """The signature is checked over the UTF-8 reading; a reader honouring another charset would see other text.

    In UTF-7, ``+ACI-`` is a quote: a signed Message holding it would end its JSON string early.
    """
    message = sign(notification(Message=json.dumps({"note": "+ACIAfQ- é"})), sns_signer)
    signed = request(message, body=json.dumps(message, ensure_ascii=False).encode(), content_type=content_type)
    if accepted:
        asyncio.run(verifier(sns_host).verify(signed))
    else:
        assert "UTF-8" in refused(verifier(sns_host), signed)


def test_message_attributes_and_unicode_are_accepted(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    message = notification(
        subject="Zustellung – “quoted” \u00e9\U0001f4e7",
        Message=json.dumps(SES_EVENT | {"note": "tab\there\nnewline é"}),
        MessageAttributes={"tenant": {"Type": "String", "Value": "acme"}},
    )
    body = json.dumps(sign(message, sns_signer, "2"), ensure_ascii=False).encode()
    asyncio.run(verifier(sns_host).verify(request(message, body=body)))


def test_the_certificate_is_fetched_once_for_many_messages(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    check = verifier(sns_host)

    async def many() -> None:
        # Concurrent first requests share one fetch; later ones use the cache.
        await asyncio.gather(*(check.verify(request(sign(notification(), sns_signer))) for _ in range(5)))
        await check.verify(request(sign(confirmation(), sns_signer, "2")))

    asyncio.run(many())
    asyncio.run(check.verify(request(sign(notification(), sns_signer))))
    assert sns_host.hits(CERT_PATH) == [CERT_PATH]


def test_the_certificate_cache_is_bounded(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    paths = [f"/SimpleNotificationService-{n}.pem" for n in range(3)]
    for path in paths:
        sns_host.routes[path] = Route(body=sns_signer.pem)
    check = verifier(sns_host, cache_size=2)
    for path in [*paths, paths[0]]:
        message = notification(SigningCertURL=f"https://sns.{REGION}.amazonaws.com{path}")
        asyncio.run(check.verify(request(sign(message, sns_signer))))
    # The first certificate was evicted by the third and fetched again.
    assert sns_host.hits("/SimpleNotificationService-") == [*paths, paths[0]]


def test_china_region_certificate_host_is_accepted(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:ses-tracking"
    message = notification(topic, SigningCertURL=f"https://sns.cn-north-1.amazonaws.com.cn{CERT_PATH}")
    check = SnsVerifier([topic], True, loopback_fetch(sns_host))
    asyncio.run(check.verify(request(sign(message, sns_signer, "2"))))
    assert sns_host.requests == [("sns.cn-north-1.amazonaws.com.cn", CERT_PATH)]


# --- what anyone else sends is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_tampered_messages_are_refused(sns_host: FakeSnsHost, sns_signer: Signer, version: str) -> None:
    check = verifier(sns_host)
    signed = sign(notification(subject="Delivery"), sns_signer, version)
    tampered = json.dumps(SES_EVENT | {"eventType": "Bounce"})
    for changed in (
        signed | {"Message": tampered},
        signed | {"Subject": "Bounce"},
        {name: value for name, value in signed.items() if name != "Subject"},
        signed | {"Timestamp": aws_time(datetime.now(UTC) - timedelta(minutes=1))},
    ):
        assert "wrong SNS message signature" in refused(check, request(changed))
    assert "wrong SNS message signature" in refused(check, request(signed | {"SignatureVersion": "12"[version == "1"]}))
    asyncio.run(check.verify(request(signed)))  # the original still passes


def test_tampered_confirmation_is_refused(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    signed = sign(confirmation(), sns_signer)
    assert "signature" in refused(verifier(sns_host), request(signed | {"Message": "hello"}))


def test_a_signature_by_another_key_is_refused(sns_host: FakeSnsHost, sns_signer: Signer, impostor: Signer) -> None:
    assert "wrong SNS message signature" in refused(verifier(sns_host), request(sign(notification(), impostor)))


def test_a_foreign_topic_is_refused_without_any_fetch(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    # Validly signed by SNS, but for someone else's topic: a signature alone proves nothing more.
    reason = refused(verifier(sns_host), request(sign(notification(OTHER_TOPIC), sns_signer)))
    assert "not allowed" in reason and OTHER_TOPIC in reason
    assert sns_host.requests == []


@pytest.mark.parametrize(
    "cert_url",
    [
        f"http://sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com.evil.example{CERT_PATH}",
        f"https://evil.example/sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com@evil.example{CERT_PATH}",
        f"https://evil.example@sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com:8443{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com\\@evil.example{CERT_PATH}",
        f"https://SNS.{REGION.upper()}.AMAZONAWS.COM{CERT_PATH}",
        f"https://sqs.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.amazonaws.com{CERT_PATH}",
        f"https://evilsns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com.cn{CERT_PATH}",
        f"https://sns.cn-north-1.amazonaws.com.cn.evil.example{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com{CERT_PATH}?x=.pem",
        f"https://sns.{REGION}.amazonaws.com{CERT_PATH}#.pem",
        f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService.crt",
        f"https://sns.{REGION}.amazonaws.com/../x.pem",
        f"https://sns.{REGION}.amazonaws.com/%2e%2e/x.pem",
        f"https://sns.{REGION}.amazonaws.com{CERT_PATH}\n",
        f" https://sns.{REGION}.amazonaws.com{CERT_PATH}",
        # Hosts a URL parser or IDNA would fold into an SNS host, and other spellings of it.
        f"https://sns.{REGION}.amazonaws.com.{CERT_PATH}",
        f"https://sns.us-eaſt-2.amazonaws.com{CERT_PATH}",
        f"https://sns\uff0e{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws\u3002com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com%2fx{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com%40evil.example{CERT_PATH}",
        f"https://sns.{REGION}\\.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com\\{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com:{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com:443{CERT_PATH}",
        f"https://@sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com{CERT_PATH}\x00",
        f"https:sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https:///sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"HTTPS://sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com{CERT_PATH.upper()}".replace(".PEM", ".pem") + "/",
        f"https://sns.{REGION}.amazonaws.com/x.pem%00.pem",
        "",
    ],
)
def test_certificate_urls_off_the_sns_hosts_are_refused_without_any_fetch(
    sns_host: FakeSnsHost, sns_signer: Signer, cert_url: str
) -> None:
    reason = refused(verifier(sns_host), request(sign(notification(SigningCertURL=cert_url), sns_signer)))
    assert "SigningCertURL" in reason
    assert sns_host.requests == []


@pytest.mark.parametrize("version", ["3", "", "01", None, 1])
def test_other_signature_versions_are_refused(sns_host: FakeSnsHost, sns_signer: Signer, version: object) -> None:
    message = sign(notification(), sns_signer) | {"SignatureVersion": version}
    if version is None:
        del message["SignatureVersion"]
    reason = refused(verifier(sns_host), request(message))
    assert "SignatureVersion" in reason or "not a string" in reason
    assert sns_host.requests == []


@pytest.mark.parametrize("signature", ["", "not base64!", None])
def test_missing_or_malformed_signature_is_refused(
    sns_host: FakeSnsHost, sns_signer: Signer, signature: object
) -> None:
    message = sign(notification(), sns_signer) | {"Signature": signature}
    if signature is None:
        del message["Signature"]
    assert "Signature" in refused(verifier(sns_host), request(message))


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-amz-sns-message-type", "SubscriptionConfirmation"),
        ("x-amz-sns-message-id", "0b6e3f1c-5d2a-4c3e-9f41-2a7d9c8e1b55"),  # another message's id
        ("x-amz-sns-topic-arn", OTHER_TOPIC),
        ("x-amz-sns-message-type", "<omit>"),
        ("x-amz-sns-message-id", "<omit>"),
        ("x-amz-sns-topic-arn", "<omit>"),
    ],
)
def test_headers_that_disagree_with_the_body_are_refused(
    sns_host: FakeSnsHost, sns_signer: Signer, header: str, value: str
) -> None:
    signed = request(sign(notification(), sns_signer), **{header: value})
    assert header in refused(verifier(sns_host), signed)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"Notification"',
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b'{"Type": "Notification", "Type": "Notification"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Type": "Notification", "Message": {"nested": "object"}}',
        b'{"Type": "Notification", "MessageId": 12}',
        b'{"Type": "Notification", "Message": NaN}',
        b'{"Type": "Notification", "MessageAttributes": {"a": {"Type": "Number", "Value": 1}}}',
        b'{"Type": "Notification", "MessageAttributes": [' + b'{"a": [' * 500 + b"]}" * 500 + b"]}",
        json.dumps({f"k{n}": "v" for n in range(40)} | {"Type": "Notification"}).encode(),
    ],
)
def test_bodies_that_are_not_a_flat_sns_object_are_refused(sns_host: FakeSnsHost, body: bytes) -> None:
    signed = request({"Type": "Notification", "MessageId": "m", "TopicArn": TOPIC}, body=body)
    refused(verifier(sns_host), signed)
    assert sns_host.requests == []


def test_duplicate_keys_cannot_smuggle_a_second_message(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    signed = json.dumps(sign(notification(), sns_signer))
    smuggled = signed[:-1] + ', "Message": "{\\"eventType\\": \\"Bounce\\"}"}'
    assert "duplicate" in refused(verifier(sns_host), request(json.loads(signed), body=smuggled.encode()))


@pytest.mark.parametrize("type_", ["Subscribe", "notification", ""])
def test_unknown_message_types_are_refused(sns_host: FakeSnsHost, sns_signer: Signer, type_: str) -> None:
    assert "Type" in refused(verifier(sns_host), request(sign(notification(Type=type_), sns_signer)))


@pytest.mark.parametrize(
    "timestamp",
    [
        aws_time(datetime.now(UTC) - timedelta(hours=2)),
        aws_time(datetime.now(UTC) + timedelta(hours=1)),
        "2026-11-23T10:00:00",
        "yesterday",
    ],
    ids=["two-hours-old", "an-hour-ahead", "no-zone", "not-a-time"],
)
def test_replayed_or_odd_timestamps_are_refused(sns_host: FakeSnsHost, sns_signer: Signer, timestamp: str) -> None:
    reason = refused(verifier(sns_host), request(sign(notification(Timestamp=timestamp), sns_signer)))
    assert re.search("replay|in the future|not an ISO 8601 time", reason)
    assert sns_host.requests == []


def test_a_message_retried_within_the_hour_is_accepted(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    retried = notification(Timestamp=aws_time(datetime.now(UTC) - timedelta(minutes=55)))
    asyncio.run(verifier(sns_host).verify(request(sign(retried, sns_signer))))


@pytest.mark.parametrize(
    "subscribe_url",
    [
        f"https://evil.example/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&TopicArn={TOPIC}&Token=TOKEN",
        f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={OTHER_TOPIC}&Token=TOKEN",
        f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=other",
        # Malformed queries are refused like any other wrong URL (400), not a crash (500).
        f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&&TopicArn={TOPIC}&Token=TOKEN",
        f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=TOKEN&x",
    ],
)
def test_a_subscribe_url_that_confirms_something_else_is_refused(
    sns_host: FakeSnsHost, sns_signer: Signer, subscribe_url: str
) -> None:
    message = confirmation()
    message["SubscribeURL"] = subscribe_url.replace("TOKEN", message["Token"])
    assert "SubscribeURL" in refused(verifier(sns_host), request(sign(message, sns_signer)))


def test_an_expired_certificate_is_refused(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=400)
    expired = make_signer(key=sns_signer.key, not_before=long_ago, not_after=long_ago + timedelta(days=30))
    sns_host.routes["/expired.pem"] = Route(body=expired.pem)
    message = notification(SigningCertURL=f"https://sns.{REGION}.amazonaws.com/expired.pem")
    assert "not valid now" in refused(verifier(sns_host), request(sign(message, sns_signer)))


def test_a_certificate_without_an_rsa_key_is_refused(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    ec_signer = make_signer(key=ec.generate_private_key(ec.SECP256R1()))
    sns_host.routes["/ec.pem"] = Route(body=ec_signer.pem)
    message = notification(SigningCertURL=f"https://sns.{REGION}.amazonaws.com/ec.pem")
    assert "RSA" in refused(verifier(sns_host), request(sign(message, sns_signer)))


# --- the certificate host failing: 503 (retry) or 400 ---------------------------------------------------------


def with_cert_path(path: str, signer: Signer) -> SignedRequest:
    return request(sign(notification(SigningCertURL=f"https://sns.{REGION}.amazonaws.com{path}"), signer))


@pytest.mark.parametrize("status", [500, 503])
def test_a_certificate_host_error_is_unavailable_so_sns_retries(
    sns_host: FakeSnsHost, sns_signer: Signer, status: int
) -> None:
    sns_host.routes["/flaky.pem"] = Route(status, b"try later")
    check = verifier(sns_host)
    with pytest.raises(SignatureUnavailable, match="retry later"):
        asyncio.run(check.verify(with_cert_path("/flaky.pem", sns_signer)))
    # Not remembered: once the host is back, the same message passes.
    sns_host.routes["/flaky.pem"] = Route(body=sns_signer.pem)
    asyncio.run(check.verify(with_cert_path("/flaky.pem", sns_signer)))
    assert sns_host.hits("/flaky.pem") == ["/flaky.pem", "/flaky.pem"]


def test_an_unreachable_certificate_host_is_unavailable(sns_signer: Signer) -> None:
    server, host = serve({})
    server.shutdown()
    server.server_close()  # nothing listens on host.port any more
    with pytest.raises(SignatureUnavailable):
        asyncio.run(verifier(host).verify(request(sign(notification(), sns_signer))))


def test_a_slow_certificate_host_is_unavailable_within_the_timeout(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    sns_host.routes["/slow.pem"] = Route(body=sns_signer.pem, delay=3)
    check = SnsVerifier([TOPIC], True, loopback_fetch(sns_host, timeout=0.3))
    with pytest.raises(SignatureUnavailable):
        asyncio.run(check.verify(with_cert_path("/slow.pem", sns_signer)))


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(404, b"<Error>NotFound</Error>"), "no SNS signing certificate"),
        (Route(301, b""), "no SNS signing certificate"),
        (Route(200, b"<html>not a certificate</html>"), "did not return a PEM certificate"),
        (Route(200, b"-----BEGIN CERTIFICATE-----\n" + b"A" * 100_000), "no SNS signing certificate"),
    ],
)
def test_a_certificate_url_without_a_certificate_is_refused(
    sns_host: FakeSnsHost, sns_signer: Signer, route: Route, reason: str
) -> None:
    sns_host.routes["/odd.pem"] = route
    assert reason in refused(verifier(sns_host), with_cert_path("/odd.pem", sns_signer))


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/SimpleNotificationService-x.pem",
        f"http://sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com:444{CERT_PATH}",
        "https://127.0.0.1/x.pem",
        "file:///etc/passwd",
    ],
)
def test_the_default_fetch_goes_only_to_sns_hosts(url: str) -> None:
    with pytest.raises(FetchFailed, match="refusing") as error:
        asyncio.run(default_fetch(url))
    assert error.value.permanent


# --- subscription confirmation ------------------------------------------------------------------------------------


def test_an_allowed_subscription_is_confirmed_once_after_it_was_stored(
    sns_host: FakeSnsHost, sns_signer: Signer
) -> None:
    message = sign(confirmation(), sns_signer, "2")
    check = verifier(sns_host)
    asyncio.run(check.verify(request(message)))
    assert sns_host.hits("/?") == []  # verifying confirms nothing
    asyncio.run(check.after_stored(request(message)))
    token = message["Token"]
    assert sns_host.hits("/?") == [f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}"]
    assert sns_host.requests[-1][0] == f"sns.{REGION}.amazonaws.com"


def test_no_confirmation_when_auto_confirm_is_off(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    message = sign(confirmation(), sns_signer)
    check = verifier(sns_host, auto_confirm=False)
    asyncio.run(check.verify(request(message)))
    asyncio.run(check.after_stored(request(message)))
    assert sns_host.hits("/?") == []


def test_notifications_and_unsubscribe_confirmations_confirm_nothing(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    check = verifier(sns_host)
    for message in (sign(notification(), sns_signer), sign(confirmation("UnsubscribeConfirmation"), sns_signer)):
        asyncio.run(check.after_stored(request(message)))
    assert sns_host.hits("/?") == []


def test_a_foreign_or_forged_subscription_is_never_confirmed(
    sns_host: FakeSnsHost, sns_signer: Signer, impostor: Signer
) -> None:
    check = verifier(sns_host)
    for message in (sign(confirmation(topic=OTHER_TOPIC), sns_signer), sign(confirmation(), impostor)):
        with pytest.raises(SignatureError):
            asyncio.run(check.after_stored(request(message)))
    assert sns_host.hits("/?") == []


def test_a_failed_confirmation_is_logged(
    sns_host: FakeSnsHost, sns_signer: Signer, caplog: pytest.LogCaptureFixture
) -> None:
    sns_host.routes["/"] = Route(403, b"<Error>AuthorizationError</Error>")
    message = sign(confirmation(), sns_signer)
    asyncio.run(verifier(sns_host).after_stored(request(message)))
    assert f"SNS subscription to {TOPIC} NOT confirmed" in caplog.text
    assert "403" in caplog.text


# --- configuration -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "topics",
    [[], ["ses-tracking"], ["arn:aws:sqs:us-east-1:123456789012:queue"], [f"{TOPIC}:extra"], ["arn:aws:sns::1:t"]],
)
def test_an_empty_or_malformed_allowlist_is_a_configuration_error(topics: list[str]) -> None:
    with pytest.raises(ValueError):
        SnsVerifier(topics, True)


def test_the_description_names_the_allowed_topics() -> None:
    check = SnsVerifier([TOPIC, OTHER_TOPIC], False)
    assert TOPIC in check.description and OTHER_TOPIC in check.description
    assert "signature" in check.description


def test_quoted_subscribe_url_parts_are_compared_decoded(sns_host: FakeSnsHost, sns_signer: Signer) -> None:
    message = confirmation()
    message["SubscribeURL"] = (
        f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={quote(TOPIC, safe='')}&Token={message['Token']}"
    )
    asyncio.run(verifier(sns_host).verify(request(sign(message, sns_signer))))
