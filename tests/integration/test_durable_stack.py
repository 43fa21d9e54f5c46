"""``espstream run`` on its durable embedded broker: stopped and started again, the stack has kept everything."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from espstream.embedded import free_port
from tests.support.services import Service, eventually

MESSAGE_IDS = [f"durable-{n}" for n in range(3)]


def delivery(message_id: str) -> dict:
    return {"RecordType": "Delivery", "MessageID": message_id, "Recipient": f"{message_id}@example.com", "DeliveredAt": "2026-11-23T16:33:54Z"}


def stack_env(data_dir: Path) -> dict[str, str]:
    """``espstream run``'s settings on free ports, and nothing of the test environment's ESPSTREAM_*."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ESPSTREAM_")}
    return {
        **env,
        "ESPSTREAM_DATA_DIR": str(data_dir),
        "ESPSTREAM_EMBEDDED_KAFKA_PORT": str(free_port()),
        "ESPSTREAM_REGISTRY_PORT": str(free_port()),
        "ESPSTREAM_GATEWAY_PORT": str(free_port()),
        "ESPSTREAM_CONSOLE_PORT": str(free_port()),
        "ESPSTREAM_GATEWAY_WORKERS": "1",
        "ESPSTREAM_GATEWAY_METRICS_PORT": "0",
        "ESPSTREAM_NORMALIZER_METRICS_PORT": "0",
        "ESPSTREAM_CONSUMER_METRICS_PORT": "0",
        "ESPSTREAM_STATUS_METRICS_PORT": "0",
        "ESPSTREAM_LOG_LEVEL": "WARNING",
    }


class Stack:
    def __init__(self, env: dict[str, str], output: Path):
        self.env, self.output = env, output
        self.process = subprocess.Popen(
            [sys.executable, "-m", "espstream", "run"], env=env, stdout=open(output, "wb"), stderr=subprocess.STDOUT
        )
        eventually(lambda: "espstream is running." in self.text() or self.process.poll() is not None, timeout=90)
        assert self.process.poll() is None, self.text()

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def interrupt(self) -> None:
        """Ctrl-C, as in the terminal."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(60) == 0, self.text()
        assert "espstream: stopped" in self.text()

    def espstream(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.env['ESPSTREAM_EMBEDDED_KAFKA_PORT']}",
               "ESPSTREAM_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{self.env['ESPSTREAM_REGISTRY_PORT']}"}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "espstream", *args], env=env, capture_output=True, text=True, timeout=timeout)


def tail_from_beginning(stack: Stack, count: int, log: Path) -> list[dict]:
    """What ``espstream tail --from-beginning`` prints, once it has printed ``count`` events."""
    env = {**stack.env, "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{stack.env['ESPSTREAM_EMBEDDED_KAFKA_PORT']}",
           "ESPSTREAM_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{stack.env['ESPSTREAM_REGISTRY_PORT']}"}  # fmt: skip
    tail = Service(["tail", "--from-beginning"], env, log).start()
    try:
        eventually(lambda: len(log.read_text().splitlines()) >= count, timeout=60)
    finally:
        tail.stop()
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{\"event_type\"")]


def test_a_restarted_stack_keeps_records_offsets_and_schemas(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")
    gateway = f"http://127.0.0.1:{env['ESPSTREAM_GATEWAY_PORT']}/webhooks/postmark/tracking/"
    first = Stack(env, tmp_path / "first.txt")
    try:
        assert "embedded broker (durable" in first.text()
        for message_id in MESSAGE_IDS:
            assert httpx.post(gateway, json=delivery(message_id), timeout=30).status_code == 200
        # The demo consumer prints each event: all three were handled (and their offsets committed).
        eventually(lambda: all(message_id in first.text() for message_id in MESSAGE_IDS), timeout=60)
    finally:
        first.interrupt()

    second = Stack(env, tmp_path / "second.txt")
    try:
        again = second.espstream("run")
        assert again.returncode == 1
        assert "a stack is already running" in again.stderr and str(tmp_path / "data") in again.stderr
        subjects = httpx.get(f"http://127.0.0.1:{env['ESPSTREAM_REGISTRY_PORT']}/subjects", timeout=10).json()
        assert "tracking.normalized-value" in subjects  # registered before the stop; nothing new was normalized
        events = tail_from_beginning(second, len(MESSAGE_IDS), tmp_path / "tail.txt")
        assert sorted(event["message_id"] for event in events) == MESSAGE_IDS
        audit = second.espstream("audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert f"OK: all {len(MESSAGE_IDS)} raw records have their outcome" in audit.stdout
        time.sleep(2)  # the demo consumer's group resumes at its committed offsets: nothing printed again
        assert not any(message_id in second.text() for message_id in MESSAGE_IDS)
    finally:
        second.interrupt()


def test_a_taken_port_stops_the_stack_before_it_starts(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["ESPSTREAM_GATEWAY_PORT"])))
        taken.listen()
        result = subprocess.run([sys.executable, "-m", "espstream", "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{env['ESPSTREAM_GATEWAY_PORT']} (the gateway, ESPSTREAM_GATEWAY_PORT)" in result.stderr
    assert not (tmp_path / "data" / "storage").exists()  # no broker was started


def test_the_memory_broker_keeps_nothing(tmp_path: Path) -> None:
    env = {**stack_env(tmp_path / "data"), "ESPSTREAM_EMBEDDED_STORAGE": "memory"}
    stack = Stack(env, tmp_path / "memory.txt")
    try:
        assert "memory only: nothing is kept after a stop" in stack.text()
        assert not (tmp_path / "data" / "storage").exists()
    finally:
        stack.interrupt()
