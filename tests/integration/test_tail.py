"""`espstream tail`: the normalized events as JSON lines, from a real broker, as a user runs it."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.topics import create_missing
from tests.conftest import settings_from_env
from tests.support.normalized import fresh_settings, produce_webhook
from tests.support.services import eventually


def postmark(record_type: str, message_id: str) -> dict:
    body = {
        "RecordType": record_type,
        "MessageID": message_id,
        "Recipient": "alice@example.com",
        "Tag": "welcome",
        "Metadata": {"customer": "42", "plan": "ünïcode"},
        "DeliveredAt": "2026-11-23T11:33:54.9070259-05:00",
    }
    if record_type == "Bounce":
        body.update(Type="HardBounce", Email="alice@example.com", BouncedAt="2026-11-23T16:40:00Z")
    return body


def mailgun_opened(message_id: str) -> dict:
    return {
        "signature": {"timestamp": "1534108637", "token": uuid.uuid4().hex, "signature": "0" * 64},
        "event-data": {
            "event": "opened",
            "timestamp": 1534108637.153125,
            "id": uuid.uuid4().hex,
            "recipient": "bob@example.com",
            "tags": ["spring"],
            "user-variables": {},
            "message": {"headers": {"message-id": message_id}},
        },
    }


class Tail:
    """``espstream tail ARGS`` in a subprocess; its stdout lines arrive in a queue."""

    def __init__(self, env: dict[str, str], args: list[str], stderr_path: Path):
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "espstream", "tail", *args],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def next_event(self, timeout: float = 30) -> dict:
        return json.loads(self.lines.get(timeout=timeout))

    def wait_ready(self) -> None:
        eventually(lambda: "tailing" in self.stderr())

    def interrupt(self) -> list[dict]:
        """Ctrl-C: it exits with 0; what it printed since the last next_event()."""
        self.process.send_signal(signal.SIGINT)
        status = self.process.wait(30)
        assert status == 0, self.stderr()
        self.reader.join(10)  # to the end of its output
        rest = []
        while not self.lines.empty():
            rest.append(json.loads(self.lines.get()))
        return rest

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def env(broker: EmbeddedBroker, registry_url: str) -> dict[str, str]:
    # One partition: the events come out in the order they were produced.
    return fresh_settings(broker.bootstrap_servers, registry_url, partitions=1)


def test_events_print_as_json_lines_and_ctrl_c_stops_cleanly(
    env: dict[str, str], broker: EmbeddedBroker, tmp_path: Path
) -> None:
    message_id = str(uuid.uuid4())
    body = postmark("Delivery", message_id)
    [event] = produce_webhook(env, "postmark", body)

    tail = Tail(env, ["--from-beginning"], tmp_path / "tail.err")
    line = tail.next_event()
    assert tail.interrupt() == []
    assert "Traceback" not in tail.stderr()
    # Nothing was committed: no group holds offsets (a group with commits is listed).
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    groups = admin.list_consumer_groups(request_timeout=10).result().valid
    assert [g.group_id for g in groups if g.group_id.startswith("espstream-tail")] == []

    assert line["event_type"] == "delivered"
    assert line["esp_name"] == "Postmark"
    assert line["message_id"] == message_id
    assert line["recipient"] == "alice@example.com"
    assert line["timestamp"] == "2026-11-23T16:33:54.907025+00:00"
    assert line["tags"] == ["welcome"]
    assert line["metadata"] == {"customer": "42", "plan": "ünïcode"}
    assert line["esp_event"] == body  # JSON, not JSON text
    assert line["dedupe_id"] == event.dedupe_id
    assert line["provenance"]["esp"] == "postmark"


def test_esp_and_type_filters(env: dict[str, str], tmp_path: Path) -> None:
    # Mailgun's message ids are in angle brackets, as anymail reports them.
    delivered, opened, bounced, opened_last = (f"<{uuid.uuid4()}@example.com>" for _ in range(4))
    produce_webhook(env, "postmark", postmark("Delivery", delivered))
    produce_webhook(env, "mailgun", mailgun_opened(opened))
    produce_webhook(env, "postmark", postmark("Bounce", bounced))
    produce_webhook(env, "mailgun", mailgun_opened(opened_last))

    mailgun = Tail(env, ["--from-beginning", "--esp", "Mailgun"], tmp_path / "mailgun.err")
    printed = [mailgun.next_event(), mailgun.next_event()]
    printed += mailgun.interrupt()
    assert [(e["esp_name"], e["message_id"]) for e in printed] == [("Mailgun", opened), ("Mailgun", opened_last)]

    types = Tail(env, ["--from-beginning", "--type", "bounced", "--type", "delivered,sent"], tmp_path / "types.err")
    printed = [types.next_event(), types.next_event()]
    printed += types.interrupt()
    assert [(e["event_type"], e["message_id"]) for e in printed] == [("delivered", delivered), ("bounced", bounced)]


def test_without_from_beginning_only_new_events_print(env: dict[str, str], tmp_path: Path) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    produce_webhook(env, "postmark", postmark("Delivery", old))

    tail = Tail(env, [], tmp_path / "tail.err")
    tail.wait_ready()
    produce_webhook(env, "postmark", postmark("Delivery", new))
    printed = [tail.next_event()]
    printed += tail.interrupt()
    assert [e["message_id"] for e in printed] == [new]


def test_piped_to_head_it_ends_when_head_does(env: dict[str, str], tmp_path: Path) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    produce_webhook(env, "postmark", postmark("Delivery", first))
    produce_webhook(env, "postmark", postmark("Delivery", second))

    # head exits after the first line; the second event is printed into the closed pipe.
    pipeline = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m espstream tail --from-beginning | head -n 1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pipeline.returncode == 0, pipeline.stderr
    assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr
    assert [json.loads(line)["message_id"] for line in pipeline.stdout.splitlines()] == [first]


def test_piped_to_head_it_ends_even_when_no_more_events_come(env: dict[str, str], tmp_path: Path) -> None:
    only = str(uuid.uuid4())
    produce_webhook(env, "postmark", postmark("Delivery", only))
    pipeline = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m espstream tail --from-beginning | head -n 1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pipeline.returncode == 0, pipeline.stderr
    assert "Traceback" not in pipeline.stderr
    assert [json.loads(line)["message_id"] for line in pipeline.stdout.splitlines()] == [only]


def test_envelope_shows_the_kafka_record_like_kcat_json(env: dict[str, str], tmp_path: Path) -> None:
    message_id = str(uuid.uuid4())
    produce_webhook(env, "postmark", postmark("Bounce", message_id))
    tail = Tail(env, ["--from-beginning", "-J"], tmp_path / "tail.err")
    line = tail.next_event()
    tail.interrupt()
    assert list(line) == ["topic", "partition", "offset", "tstype", "ts", "key", "payload", "value_schema_id"]
    assert line["topic"] == env["ESPSTREAM_NORMALIZED_TOPIC"]
    assert (line["partition"], line["offset"], line["key"]) == (0, 0, message_id)
    assert line["tstype"] == "create" and isinstance(line["ts"], int)
    assert line["payload"]["event_type"] == "bounced"
    registry = SchemaRegistryClient({"url": env["ESPSTREAM_SCHEMA_REGISTRY_URL"]})
    subject = registry.get_latest_version(f"{env['ESPSTREAM_NORMALIZED_TOPIC']}-value")
    assert line["value_schema_id"] == subject.schema_id


def test_another_topic_of_events_with_its_headers(env: dict[str, str], tmp_path: Path) -> None:
    letters = f"{env['ESPSTREAM_NORMALIZED_TOPIC']}.dlq.billing"
    create_missing(settings_from_env(env), [NewTopic(letters, 1, 1)])
    message_id = str(uuid.uuid4())
    headers = [("dlq-receiver", b"billing.receivers.charge"), ("dlq-attempts", b"3")]
    produce_webhook(env, "postmark", postmark("Delivery", message_id), topic=letters, record_headers=headers)

    tail = Tail(env, ["--from-beginning", "-J", "--topic", letters], tmp_path / "tail.err")
    line = tail.next_event()
    tail.interrupt()
    assert line["topic"] == letters
    assert line["headers"] == ["dlq-receiver", "billing.receivers.charge", "dlq-attempts", "3"]
    assert line["payload"]["message_id"] == message_id


def test_unknown_esp_or_type_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    for args, wanted in ((["--esp", "postmark,hotmail"], "unknown ESP 'hotmail'"), (["--type", "read"], "unknown event type 'read'")):
        tail = Tail(env, args, tmp_path / "tail.err")
        assert tail.process.wait(30) == 2
        assert wanted in tail.stderr()


def test_a_missing_topic_is_an_error_not_a_hang(env: dict[str, str], tmp_path: Path) -> None:
    tail = Tail(env, ["--topic", f"no-such-topic-{uuid.uuid4().hex[:8]}"], tmp_path / "tail.err")
    assert tail.process.wait(30) == 1
    assert "does not exist" in tail.stderr()


def run_tail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """A tail that ends by itself (-c, -e): its output once it has."""
    return subprocess.run(
        [sys.executable, "-m", "espstream", "tail", *args],
        env={**os.environ, **env}, capture_output=True, text=True, encoding="utf-8", timeout=60,
    )  # fmt: skip


def message_ids(output: str) -> list[str]:
    return [json.loads(line)["message_id"] for line in output.splitlines()]


def test_count_exits_after_n_events(env: dict[str, str]) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for message_id in ids:
        produce_webhook(env, "postmark", postmark("Delivery", message_id))
    result = run_tail(env, "--from-beginning", "-c", "2")
    assert result.returncode == 0, result.stderr
    assert message_ids(result.stdout) == ids[:2]


def test_exit_at_the_end_prints_what_is_there_then_ends(env: dict[str, str]) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for message_id in ids:
        produce_webhook(env, "postmark", postmark("Delivery", message_id))
    produce_webhook(env, "postmark", postmark("Bounce", str(uuid.uuid4())))
    result = run_tail(env, "-e", "--from-beginning", "--type", "delivered")
    assert result.returncode == 0, result.stderr
    assert message_ids(result.stdout) == ids
    # From the end (the default), there is nothing to print: it ends at once.
    assert run_tail(env, "-e").stdout == ""


def test_from_a_time_starts_at_the_events_written_since(env: dict[str, str]) -> None:
    from datetime import UTC, datetime

    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    produce_webhook(env, "postmark", postmark("Delivery", old))
    time.sleep(0.05)
    since = datetime.now(UTC)
    time.sleep(0.05)
    produce_webhook(env, "postmark", postmark("Delivery", new))
    result = run_tail(env, "--from", since.isoformat(), "-e")
    assert result.returncode == 0, result.stderr
    assert message_ids(result.stdout) == [new]
    # Followed from that time, without -e: the same event first.
    followed = run_tail(env, "--from", since.isoformat(), "-c", "1")
    assert message_ids(followed.stdout) == [new]
