"""The operator CLI against the embedded broker: an absent registry, `espstream send` to a real gateway, times as printed.

Everything runs as a user runs it, ``python -m espstream ...`` in a process of
its own, and the assertions are on what it prints and its exit status.
"""

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import raw
from tests.conftest import settings_from_env
from tests.faults.helpers import raw_headers
from tests.support.services import Service, own_topics, read_topic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def espstream(env: dict[str, str], *args: str, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "espstream", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        **options,
    )


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    env = own_topics(broker.bootstrap_servers, registry_url, partitions=1)
    ensure_topics(settings_from_env(env))
    return env


# -- the registry unreachable -------------------------------------------------------------------

REGISTRY_COMMANDS = [["tail"], ["dlq", "list", "--group", "billing"], ["audit"], ["export", "--out", "exported"], ["replay", "--diff"]]


@pytest.mark.parametrize("command", REGISTRY_COMMANDS, ids=" ".join)
def test_an_unreachable_registry_is_one_line_naming_the_setting(command: list[str], env: dict[str, str], tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = espstream({**env, "ESPSTREAM_SCHEMA_REGISTRY_URL": nowhere}, *command, cwd=tmp_path)
    assert time.monotonic() - started < 10
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.splitlines()
    assert f"ESPSTREAM_SCHEMA_REGISTRY_URL={nowhere}" in line and "is `espstream run` running?" in line


def test_the_registry_url_flag_sets_the_setting(env: dict[str, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = espstream(env, "--registry-url", nowhere, "tail")
    assert result.returncode == 3
    assert f"ESPSTREAM_SCHEMA_REGISTRY_URL={nowhere}" in result.stderr


def test_a_command_that_needs_no_registry_runs_without_one(env: dict[str, str]) -> None:
    result = espstream({**env, "ESPSTREAM_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{free_port()}"}, "dlq", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"0 pending dead letters on {env['ESPSTREAM_DLQ_TOPIC']}\n")


# -- times, one format --------------------------------------------------------------------------


def test_audit_and_export_print_times_in_utc_to_the_millisecond(env: dict[str, str], tmp_path: Path) -> None:
    """Given in another zone, printed in UTC with its offset: the same text as the logs and dlq show."""
    producer = Producer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"]})
    producer.produce(env["ESPSTREAM_RAW_TOPIC"], b"{}", headers=raw_headers("postmark", "application/json", "req-1"))
    producer.flush(10)
    range_args = ["--from", "2026-01-01T01:00:00+01:00", "--to", "2099-01-01"]

    audit = espstream(env, "audit", "--from", "2026-01-01T01:00:00+01:00")
    assert audit.returncode == 1, audit.stderr  # the record nobody normalized is missing
    assert "2026-01-01T00:00:00.000+00:00 .. now" in audit.stdout
    [missing] = [line for line in audit.stdout.splitlines() if "request req-1" in line]
    # The gateway's header holds microseconds; printed, to the millisecond like every other time.
    assert re.search(r"received \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00: ", missing), missing

    export = espstream(env, "export", *range_args, "--out", str(tmp_path / "out"))
    assert export.returncode == 0, export.stderr
    assert "written from 2026-01-01T00:00:00.000+00:00 until 2099-01-01T00:00:00.000+00:00" in export.stdout


# -- espstream send -----------------------------------------------------------------------------


class Keys:
    """The gateway's signing keys for the ESPs whose signatures `send` can make, and basic auth."""

    def __init__(self) -> None:
        self.credentials = f"esp:{secrets.token_urlsafe(16)}"
        self.settings = {
            "ESPSTREAM_WEBHOOK_SECRET": f"{self.credentials},other:{secrets.token_urlsafe(16)}",
            "ESPSTREAM_MAILGUN_WEBHOOK_SIGNING_KEY": secrets.token_hex(16),
            "ESPSTREAM_MANDRILL_WEBHOOK_KEY": secrets.token_urlsafe(16),
            "ESPSTREAM_MAILERSEND_SIGNING_SECRET": secrets.token_hex(16),
            "ESPSTREAM_MAILTRAP_TRACKING_SECRET": secrets.token_hex(16),
            "ESPSTREAM_RESEND_SIGNING_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            "ESPSTREAM_UNISENDER_GO_API_KEY": secrets.token_hex(16),
        }


@pytest.fixture(scope="module")
def gateway(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A gateway checking every signature `send` can make; the settings `send` reads, with its --url."""
    keys = Keys()
    port = free_port()
    env = {**own_topics(broker.bootstrap_servers, registry_url), **keys.settings,
           "ESPSTREAM_GATEWAY_HOST": "127.0.0.1", "ESPSTREAM_GATEWAY_PORT": str(port)}  # fmt: skip
    ensure_topics(settings_from_env(env))
    service = Service(["gateway"], env, tmp_path_factory.mktemp("gateway") / "gateway.log").start(port)
    yield {**env, "URL": f"http://127.0.0.1:{port}"}
    service.stop()


def send(gateway: dict[str, str], *args: str, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess[str]:
    return espstream({**gateway, **(env or {})}, "send", *args, "--url", gateway["URL"], **options)


def stored(gateway: dict[str, str], request_id: str) -> bytes:
    """The body of the raw record the gateway wrote for ``request_id``."""
    for record in read_topic(gateway["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], gateway["ESPSTREAM_RAW_TOPIC"]):
        if dict(record.headers() or ()).get(raw.REQUEST_ID) == request_id.encode():
            return record.value()
    raise AssertionError(f"no raw record of request {request_id}")


def request_id(output: str) -> str:
    return output.split("request id ", 1)[1].split()[0]


SIGNED_FIXTURES = [
    "mailgun/delivered.json",
    "mailgun/legacy_delivered_multipart.json",
    "mandrill/click.json",
    "mailersend/clicked.json",
    "mailtrap/bounce.json",
    "resend/bounced_hard.json",
    "unisender_go/delivered.json",
]


@pytest.mark.parametrize("fixture", SIGNED_FIXTURES)
def test_a_fixture_is_sent_signed_and_stored(fixture: str, gateway: dict[str, str]) -> None:
    result = send(gateway, fixture.split("/")[0], str(FIXTURES / fixture))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("200 OK  request id ")
    assert result.stderr == ""
    assert stored(gateway, request_id(result.stdout))


def test_a_signature_made_with_another_key_is_refused_with_status_1(gateway: dict[str, str]) -> None:
    wrong = {"ESPSTREAM_MAILERSEND_SIGNING_SECRET": secrets.token_hex(16)}
    result = send(gateway, "mailersend", str(FIXTURES / "mailersend/clicked.json"), env=wrong)
    assert result.returncode == 1
    assert result.stdout.startswith("400 Bad Request  request id ")


def test_a_raw_body_from_stdin_with_basic_auth(gateway: dict[str, str]) -> None:
    body = json.dumps({"RecordType": "Delivery", "MessageID": str(uuid.uuid4()), "Recipient": "a@example.com"})
    result = send(gateway, "Postmark", "-", input=body)
    assert result.returncode == 0, result.stderr
    assert stored(gateway, request_id(result.stdout)) == body.encode()

    unauthenticated = send(gateway, "postmark", "-", input=body, env={"ESPSTREAM_WEBHOOK_SECRET": ""})
    assert unauthenticated.returncode == 1
    assert unauthenticated.stdout.startswith("401 Unauthorized")


def test_a_mailgun_legacy_capture_with_its_content_type(gateway: dict[str, str], tmp_path: Path) -> None:
    """A multipart body as captured, signed in place: the stored bytes differ only by the signature."""
    boundary = "capture-boundary"
    parts = {"event": "delivered", "recipient": "bob@example.com", "Message-Id": "<capture@example.com>",
             "timestamp": str(int(time.time())), "token": secrets.token_hex(25), "signature": "0" * 64}  # fmt: skip
    body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n' for name, value in parts.items())
    capture = tmp_path / "capture.txt"
    capture.write_bytes(f"{body}--{boundary}--\r\n".encode())
    result = send(gateway, "mailgun", str(capture), "--content-type", f"multipart/form-data; boundary={boundary}")
    assert result.returncode == 0, result.stdout + result.stderr
    sent = stored(gateway, request_id(result.stdout))
    assert b"0" * 64 not in sent and len(sent) == capture.stat().st_size


def test_an_esp_signing_with_a_private_key_is_said_and_sent_as_given(gateway: dict[str, str], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    # A gateway checking SendGrid's signature: the one of the fixture is not SendGrid's.
    port = free_port()
    env = {**gateway, "ESPSTREAM_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": pem, "ESPSTREAM_GATEWAY_PORT": str(port)}
    service = Service(["gateway"], env, tmp_path / "gateway.log").start(port)
    try:
        result = espstream(env, "send", "sendgrid", str(FIXTURES / "sendgrid/batch_message_lifecycle.json"), "--url", f"http://127.0.0.1:{port}")
    finally:
        service.stop()
    assert result.returncode == 1
    assert "only SendGrid holds the private key" in result.stderr
    assert result.stdout.startswith("400 Bad Request")
