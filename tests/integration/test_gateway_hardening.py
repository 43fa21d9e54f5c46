"""What an adversarial client found, through a real gateway process: stalls, 500s, leaked credentials, reused signatures.

Each test is a request (or a flood of them) any client can send, with what a
user of the gateway sees: other ESPs' webhooks answered in time, a clear 4xx,
no password in an answer or a log line, nothing written for a refusal.
"""

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from espstream.embedded import EmbeddedBroker
from espstream.gateway.app import create_app
from espstream.gateway.settings import GatewaySettings
from espstream.gateway.signatures import SignedRequest
from espstream.plumbing.topics import ensure_topics
from espstream.schemas.esps import ESP_SLUGS
from tests.conftest import settings_from_env
from tests.integration.test_pipeline import Pipeline, pipeline_env, postmark_delivery
from tests.support.services import Service, read_topic
from tests.unit.gateway.test_gateway_fuzz import KNOWN_CRASHES, requests
from tests.unit.gateway.test_signatures import public_key_body
from tests.unit.normalizer.fuzz.test_parsers_fuzz import fuzz_settings

USER = "esp"
# Passwords whose characters end a URL's authority: a split URL puts them in the path, query or fragment.
PASSWORDS = [f"pa{char}ss-Zq8v" for char in "/?#@:%"] + ["p@ss:w/rd?x#y-Zq8v"]
SENDGRID_MAX_AGE = 300
MAX_BODY_BYTES = 2_621_440


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def gateway(
    broker: EmbeddedBroker, sendgrid_key: ec.EllipticCurvePrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("hardened-gateway")
    env = pipeline_env(broker.bootstrap_servers, "http://127.0.0.1:1") | {
        "ESPSTREAM_WEBHOOK_SECRET": json.dumps([f"{USER}:{password}" for password in PASSWORDS]),
        "ESPSTREAM_ENABLED_ESPS": "mailgun,mandrill,sendgrid,postmark",
        "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": secrets.token_hex(16),
        "ESPSTREAM_MANDRILL_WEBHOOK_KEY": secrets.token_urlsafe(16),
        "ESPSTREAM_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": public_key_body(sendgrid_key),
        "ESPSTREAM_SENDGRID_MAX_AGE_SECONDS": str(SENDGRID_MAX_AGE),
    }
    ensure_topics(settings_from_env(env))
    port = int(env["ESPSTREAM_GATEWAY_PORT"])
    service = Service(["gateway"], env, tmp / "gateway.log").start(port)
    yield Pipeline(env, f"http://127.0.0.1:{port}", (USER, PASSWORDS[0]), broker.bootstrap_servers, service, tmp)
    service.stop()


def stored(gateway: Pipeline) -> list[bytes]:
    return [record.value() for record in read_topic(gateway.bootstrap_servers, gateway.topic("raw"))]


# One client stalls every webhook


def empty_parts_body() -> bytes:
    """The largest body accepted, all of it parts with one header and no name: each costs parsing, none is kept."""
    part, end = b"--XX\r\nA:\r\n\r\n\r\n", b"--XX--\r\n"
    return part * ((MAX_BODY_BYTES - len(end)) // len(part)) + end


def test_other_webhooks_keep_their_latency_while_bodies_of_empty_parts_arrive(gateway: Pipeline) -> None:
    body = empty_parts_body()
    stop = threading.Event()
    attacks: list[int] = []

    def attack(esp: str) -> None:  # Mailgun and Mandrill parse a form before the signature is checked
        with httpx.Client(auth=gateway.auth, timeout=60) as client:
            while not stop.is_set():
                response = client.post(f"{gateway.url}/webhooks/{esp}/tracking/", content=body,
                                       headers={"Content-Type": "multipart/form-data; boundary=XX"})
                attacks.append(response.status_code)

    attackers = [threading.Thread(target=attack, args=(esp,)) for esp in ("mailgun", "mandrill", "mailgun")]
    for thread in attackers:
        thread.start()
    latencies = []
    try:
        time.sleep(0.5)  # bodies in flight
        with httpx.Client(auth=gateway.auth, timeout=60) as client:
            for _ in range(20):
                started = time.perf_counter()
                response = client.post(f"{gateway.url}/webhooks/postmark/tracking/",
                                       content=postmark_delivery(secrets.token_hex(8)))
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
                time.sleep(0.05)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()

    assert len(attacks) >= 6, attacks  # the flood went on while the webhooks were timed
    assert set(attacks) == {400}
    assert max(latencies) < 0.5, sorted(latencies)
    assert not any(b"--XX\r\nA:" in value for value in stored(gateway))


# 500s where the contract says 400


def test_a_host_that_makes_no_url_is_a_400_for_mandrill(gateway: Pipeline) -> None:
    response = gateway.post("mandrill", b"mandrill_events=%5B%5D", "application/x-www-form-urlencoded",
                            {"Host": "[", "X-Mandrill-Signature": "AAAA"})
    assert response.status_code == 400
    assert "Host" in response.json()["detail"]


@pytest.mark.parametrize("charset", ["unicode_escape", "raw_unicode_escape", "utf-7", "idna", "undefined", "punycode"])
def test_a_multipart_charset_that_reads_no_text_is_a_400(gateway: Pipeline, charset: str) -> None:
    name = b"+2ADYAA-" if charset == "utf-7" else b"\\ud800\xff"  # a lone surrogate, or bytes the codec fails on
    body = b'--XX\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\nv\r\n--XX--\r\n'
    for esp, headers in (("mandrill", {"X-Mandrill-Signature": "AAAA"}), ("mailgun", {})):
        response = gateway.post(esp, body, f"multipart/form-data; charset={charset}; boundary=XX", headers)
        assert response.status_code == 400, (esp, response.text)


def test_random_requests_to_the_app_get_2xx_4xx_or_503_never_500(gateway: Pipeline) -> None:
    """The app in this process (the gateway's settings, the real broker) under random requests to every ESP's URL."""
    values = {name.removeprefix("ESPSTREAM_").lower(): value for name, value in gateway.env.items()}
    settings = GatewaySettings(**{**values, "enabled_esps": list(ESP_SLUGS)})
    app = create_app(settings, announce=False)
    loop = asyncio.new_event_loop()
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://gw")
    answers: set[int] = set()

    @fuzz_settings(300)
    @given(esp=st.sampled_from([*ESP_SLUGS, "pigeon_post"]), request=requests(), auth=st.booleans())
    @example(esp="mandrill", request=KNOWN_CRASHES[0][1], auth=True)  # Host: [
    def run(esp: str, request: SignedRequest, auth: bool) -> None:
        headers = {**request.headers, "host": request.url.split("/")[2]}
        if request.content_type is not None:
            headers["content-type"] = request.content_type
        try:
            sent = httpx.Headers({name: value.encode("latin-1") for name, value in headers.items()})
        except (UnicodeEncodeError, httpx.LocalProtocolError):
            return  # no HTTP request carries it
        if auth:
            sent["authorization"] = httpx.BasicAuth(*gateway.auth)._auth_header
        response = loop.run_until_complete(client.post(f"/webhooks/{esp}/tracking/", content=request.body, headers=sent))
        answers.add(response.status_code)
        assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text)

    try:
        run()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
    assert {400, 401, 404} <= answers  # the requests reached each kind of check


# A Mandrill refusal printed the basic-auth password


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_mandrill_refusal_shows_no_password_in_the_answer_or_the_log(gateway: Pipeline, password: str) -> None:
    response = gateway.post("mandrill", b"mandrill_events=%5B%5D", "application/x-www-form-urlencoded",
                            {"X-Mandrill-Signature": base64.b64encode(b"x" * 20).decode()}, auth=(USER, password))

    assert response.status_code == 400
    assert "incorrect signature" in response.json()["detail"]
    credentials = base64.b64encode(f"{USER}:{password}".encode()).decode()
    for text in (response.text, gateway.normalizer.log()):  # the Pipeline's service is this gateway
        assert password not in text and credentials not in text
        assert "Zq8v" not in text  # nor any piece of it, wherever a split of the URL cut it


# SendGrid signs timestamp || body: the boundary between them is not signed


def sendgrid_headers(key: ec.EllipticCurvePrivateKey, signed: bytes, timestamp: str) -> dict[str, str]:
    signature = base64.b64encode(key.sign(signed, ec.ECDSA(hashes.SHA256()))).decode()
    return {"X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def test_a_sendgrid_signature_holds_only_for_its_timestamp_and_body(
    gateway: Pipeline, sendgrid_key: ec.EllipticCurvePrivateKey
) -> None:
    marker = secrets.token_hex(8)
    body = json.dumps([{"email": "a@example.com", "event": "delivered", "sg_event_id": marker}]).encode()
    now = str(int(time.time()))
    signature = sendgrid_headers(sendgrid_key, now.encode() + body, now)["X-Twilio-Email-Event-Webhook-Signature"]

    def post(timestamp: str, content: bytes) -> int:
        headers = {"X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}
        return gateway.post("sendgrid", content, headers=headers).status_code

    assert post(now + body[:2].decode(), body[2:]) == 400  # body bytes moved into the timestamp
    assert post(now[:-2], now[-2:].encode() + body) == 400  # timestamp digits moved into the body
    assert post(now, body) == 200
    old = str(int(time.time()) - SENDGRID_MAX_AGE - 60)
    stale = gateway.post("sendgrid", body, headers=sendgrid_headers(sendgrid_key, old.encode() + body, old))
    assert stale.status_code == 400 and f"{SENDGRID_MAX_AGE}s" in stale.json()["detail"]
    assert [value for value in stored(gateway) if marker.encode() in value] == [body]


# The 404 of an unknown ESP says which ones exist


def test_an_unknown_esp_is_a_404_that_lists_the_esps(gateway: Pipeline) -> None:
    response = gateway.post("mailchimp", b"[]")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "unknown ESP 'mailchimp'" in detail
    assert all(slug in detail for slug in ESP_SLUGS)
