"""`espstream consume --django-settings` with a broker: a Django project's anymail receivers, unchanged, on the stream."""

import json
import uuid
from pathlib import Path

from espstream.embedded import EmbeddedBroker
from espstream.schemas import raw
from tests.support.normalized import fresh_settings, produce_webhook
from tests.support.services import Service, eventually, read_topic


def postmark_bounce(message_id: str, email: str = "john@example.com") -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "MessageID": message_id,
        "Email": email,
        "Tag": "welcome",
        "Metadata": {"customer": "42"},
        "BouncedAt": "2019-11-05T16:33:54.9070259Z",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    }


def mailgun_legacy_opened(message_id: str) -> list[tuple[str, str]]:
    return [
        ("event", "opened"),
        ("recipient", "alice@example.com"),
        ("message-id", message_id),
        ("tag", "spring"),
        ("timestamp", "1461261330"),
        ("token", uuid.uuid4().hex),
        ("signature", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"),
    ]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_anymail_receivers_of_a_django_project_run_unchanged(
    broker: EmbeddedBroker, registry_url: str, tmp_path: Path
) -> None:
    env = {
        **fresh_settings(broker.bootstrap_servers, registry_url),
        "ESPSTREAM_CONSUMER_MAX_ATTEMPTS": "2",
        "ESPSTREAM_CONSUMER_RETRY_BACKOFF_SECONDS": "0.05",
        "ANYMAIL_EVENTS_FILE": str(tmp_path / "anymail.jsonl"),
        "RECEIVED_EVENTS_FILE": str(tmp_path / "espstream.jsonl"),
    }
    bounced, opened, failing = (f"<{uuid.uuid4()}@example.com>" for _ in range(3))
    [bounce] = produce_webhook(env, "postmark", postmark_bounce(bounced))
    produce_webhook(env, "mailgun", form=mailgun_legacy_opened(opened))
    produce_webhook(env, "postmark", postmark_bounce(failing, email="fail@example.com"))

    group = f"django-{uuid.uuid4().hex[:8]}"
    args = ["consume", "tests.support.receivers_for_cli", "--django-settings", "tests.support.django_project.settings", "--group", group]
    consumer = Service(args, env, tmp_path / "consume.log").start()
    try:
        anymail_file, espstream_file = tmp_path / "anymail.jsonl", tmp_path / "espstream.jsonl"
        # The plain espstream receiver module runs beside the bridge and gets all three.
        eventually(lambda: {bounced, opened, failing} <= {r["message_id"] for r in lines(espstream_file)}, timeout=60)
        records = eventually(
            lambda: (r := lines(anymail_file)) and {bounced, opened} <= {x["message_id"] for x in r} and r, timeout=60
        )
        dlq_topic = f"{env['ESPSTREAM_NORMALIZED_TOPIC']}.dlq.{group}"
        [letter] = eventually(lambda: read_topic(broker.bootstrap_servers, dlq_topic), timeout=60)
    finally:
        assert consumer.stop() == 0, consumer.log()

    by_receiver = {(r["receiver"], r["message_id"]): r for r in records}
    postmark = by_receiver[("record_event", bounced)]
    assert postmark == {
        "receiver": "record_event",
        "sender": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
        "is_anymail_event": True,
        "esp_name": "Postmark",
        "event_type": "bounced",
        "timestamp": "2019-11-05T16:33:54.907025+00:00",
        "aware": True,
        "message_id": bounced,
        "recipient": "john@example.com",
        "tags": ["welcome"],
        "metadata": {"customer": "42"},
        "reject_reason": "bounced",
        "mta_response": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "esp_event_is_querydict": False,
        "esp_event_event": None,
        "kwargs": ["dedupe_id", "offset", "partition", "signal", "topic"],  # Django adds signal
        "dedupe_id": bounce.dedupe_id,
    }
    mailgun = by_receiver[("record_event", opened)]
    assert mailgun["sender"] == "anymail.webhooks.mailgun.MailgunTrackingWebhookView"
    assert (mailgun["esp_name"], mailgun["event_type"], mailgun["tags"]) == ("Mailgun", "opened", ["spring"])
    # A legacy form post reaches anymail receivers as the QueryDict anymail gives them.
    assert mailgun["esp_event_is_querydict"] and mailgun["esp_event_event"] == "opened"
    # A receiver connected with sender=PostmarkTrackingWebhookView gets Postmark's events only.
    assert ("postmark_only", bounced) in by_receiver and ("postmark_only", opened) not in by_receiver

    # The Django receiver that raised: retried, then the event is in the group's dead letters.
    assert failing not in {r["message_id"] for r in records}
    headers = dict(letter.headers())
    assert letter.key() == failing.encode()
    assert headers[raw.DLQ_RECEIVER] == b"espstream.consumers.django_bridge.send_to_anymail"
    assert headers[raw.DLQ_ERROR_CLASS] == b"RuntimeError"
    assert b"cannot reach the CRM" in headers[raw.DLQ_ERROR_MESSAGE]
    assert headers[raw.DLQ_ATTEMPTS] == b"2"
