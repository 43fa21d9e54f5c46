"""Amazon SNS through a running gateway app, with a real broker: stored, refused, confirmed."""

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from espstream.embedded import EmbeddedBroker
from espstream.gateway.app import create_app
from espstream.gateway.settings import GatewaySettings
from espstream.gateway.signatures.amazon_ses import (
    HttpsFetch,
)
from espstream.gateway.signatures.base import SignedRequest
from espstream.plumbing.topics import ensure_topics
from tests.support.services import read_topic
from tests.support.sns import (
    CERT_PATH,
    OTHER_TOPIC,
    SES_EVENT,
    TOPIC,
    FakeSnsHost,
    Route,
    Signer,
    confirmation,
    loopback_fetch,
    notification,
    request,
    sign,
)


@dataclass
class Gateway:
    settings: Any
    bootstrap_servers: str

    def post_all(
        self, fetch: HttpsFetch, requests: list[SignedRequest], auth: tuple[str, str] | None = None
    ) -> list[httpx.Response]:
        """POST each request's body and headers to a running gateway app, in order."""

        async def run() -> list[httpx.Response]:
            app = create_app(self.settings, fetch=fetch)
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                async with httpx.AsyncClient(transport=transport, base_url="https://webhooks.example.com") as client:
                    return [
                        await client.post(
                            "/webhooks/amazon_ses/tracking/",
                            content=signed.body,
                            headers=dict(signed.headers),
                            auth=auth,
                        )
                        for signed in requests
                    ]

        return asyncio.run(run())

    def stored_bodies(self) -> list[bytes]:
        return [record.value() for record in read_topic(self.bootstrap_servers, self.settings.raw_topic)]


def gateway_for(broker: EmbeddedBroker, **settings: Any) -> Gateway:
    prefix = f"sns{uuid.uuid4().hex[:8]}"
    gateway_settings = GatewaySettings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        raw_topic=f"{prefix}.raw",
        normalized_topic=f"{prefix}.normalized",
        dlq_topic=f"{prefix}.dlq",
        topic_partitions=1,
        enabled_esps=["amazon_ses"],
        amazon_ses_topic_arns=[TOPIC],
        **settings,
    )
    ensure_topics(gateway_settings)
    return Gateway(gateway_settings, broker.bootstrap_servers)


def test_the_gateway_stores_signed_messages_and_nothing_it_refuses(
    broker: EmbeddedBroker, sns_host: FakeSnsHost, sns_signer: Signer, impostor: Signer
) -> None:
    gateway = gateway_for(broker)
    good = [
        request(sign(notification(subject="Amazon SES Email Event Notification"), sns_signer, "1")),
        request(sign(notification(), sns_signer, "2")),
        request(sign(confirmation(), sns_signer, "2")),
        request(sign(confirmation("UnsubscribeConfirmation"), sns_signer, "1")),
    ]
    signed = sign(notification(), sns_signer)
    bad = [
        request(sign(notification(), impostor)),  # wrong signature
        request(sign(notification(OTHER_TOPIC), sns_signer)),  # someone else's topic
        request(sign(confirmation(topic=OTHER_TOPIC), sns_signer)),  # someone else's subscription
        request(sign(notification(SigningCertURL=f"https://evil.example{CERT_PATH}"), sns_signer)),  # not AWS
        request(signed, **{"x-amz-sns-message-type": "SubscriptionConfirmation"}),  # header/body mismatch
        request(signed | {"Message": json.dumps(SES_EVENT | {"eventType": "Bounce"})}),  # tampered Message
        request(signed, body=b"[" * 50_000),  # not an SNS object
        request(signed, content_type="text/plain; charset*=''latin-1"),  # the normalizer would read Latin-1
        request(signed, content_type="text/plain; charset*=no-such-codec''utf-8"),  # Django cannot read it
    ]
    responses = gateway.post_all(loopback_fetch(sns_host), good + bad)

    assert [r.status_code for r in responses] == [200] * len(good) + [400] * len(bad)
    assert all("signature check failed" in r.json()["detail"] for r in responses[len(good):])
    assert sorted(gateway.stored_bodies()) == sorted(r.body for r in good)
    # The allowed subscription was confirmed once; the foreign one never.
    token = json.loads(good[2].body)["Token"]
    assert sns_host.hits("/?") == [f"/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token={token}"]
    assert sns_host.hits(CERT_PATH) == [CERT_PATH]


def test_the_gateway_does_not_confirm_when_auto_confirm_is_off(
    broker: EmbeddedBroker, sns_host: FakeSnsHost, sns_signer: Signer
) -> None:
    gateway = gateway_for(broker, amazon_ses_auto_confirm_sns_subscriptions=False)
    subscription = request(sign(confirmation(), sns_signer))
    assert [r.status_code for r in gateway.post_all(loopback_fetch(sns_host), [subscription])] == [200]
    assert gateway.stored_bodies() == [subscription.body]
    assert sns_host.hits("/?") == []


def test_the_gateway_answers_503_when_the_certificate_host_is_down(
    broker: EmbeddedBroker, sns_host: FakeSnsHost, sns_signer: Signer
) -> None:
    gateway = gateway_for(broker)
    sns_host.routes[CERT_PATH] = Route(503, b"Service Unavailable")
    message = request(sign(notification(), sns_signer))
    [response] = gateway.post_all(loopback_fetch(sns_host), [message])
    assert response.status_code == 503  # SNS retries 5xx (never 4xx)
    assert response.headers["Retry-After"].isdigit()
    assert gateway.stored_bodies() == []


def test_the_gateway_asks_for_basic_auth_before_checking_signatures(
    broker: EmbeddedBroker, sns_host: FakeSnsHost, sns_signer: Signer
) -> None:
    gateway = gateway_for(broker, webhook_secret=["sns:a-long-password"])
    message = request(sign(notification(), sns_signer))
    [missing] = gateway.post_all(loopback_fetch(sns_host), [message])
    [wrong] = gateway.post_all(loopback_fetch(sns_host), [message], auth=("sns", "wrong"))
    [right] = gateway.post_all(loopback_fetch(sns_host), [message], auth=("sns", "a-long-password"))
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["WWW-Authenticate"].startswith("Basic ")
    assert gateway.stored_bodies() == [message.body]
    assert sns_host.hits(CERT_PATH) == [CERT_PATH]  # only the authenticated request needed the certificate
