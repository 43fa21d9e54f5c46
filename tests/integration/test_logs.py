"""Structured logs: JSON lines from real processes, and one request id from the HTTP answer to the receivers' log lines."""

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from espstream.embedded import EmbeddedBroker
from espstream.plumbing.logs import REQUEST_ID, JsonLinesFormatter, RequestIdFilter, TextFormatter
from espstream.schemas.avro import EventDeserializer
from tests.integration.test_metrics import Stack, start_stack
from tests.integration.test_pipeline import postmark_delivery
from tests.support.services import eventually, read_topic

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def stack(broker: EmbeddedBroker, registry_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(broker, registry_url, tmp_path_factory.mktemp("logs"), ESPSTREAM_GATEWAY_ACCESS_LOG="1")
    yield running
    running.stop()


def json_lines(text: str) -> list[dict]:
    """Every line of a log, each of which must be a JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lines_with(stack: Stack, service: str, request_id: str) -> list[dict]:
    return [line for line in json_lines(stack.log(service)) if line.get("request_id") == request_id]


def raw_header(stack: Stack, body: bytes, name: str) -> str:
    [record] = [r for r in read_topic(stack.env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], stack.env["ESPSTREAM_RAW_TOPIC"]) if r.value() == body]
    return dict(record.headers())[name].decode()


def test_a_webhook_has_one_request_id_from_the_answer_to_the_normalized_event(stack: Stack, registry_url: str) -> None:
    message_id = f"traced-{uuid.uuid4().hex}"
    body = postmark_delivery(message_id)
    response = stack.post("postmark", body)
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    assert HEX_ID.fullmatch(request_id)

    # The gateway's line about the request.
    [line] = eventually(lambda: lines_with(stack, "gateway", request_id), timeout=10)
    assert line["logger"] == "espstream.gateway.access"
    assert (line["level"], line["esp"], line["status"], line["reason"]) == ("INFO", "postmark", 200, "stored")
    assert line["body_bytes"] == len(body)
    # The raw record, and the event's provenance.
    assert raw_header(stack, body, "request-id") == request_id
    decode = EventDeserializer(SchemaRegistryClient({"url": registry_url}))

    def normalized() -> list:
        records = read_topic(stack.env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"], stack.env["ESPSTREAM_NORMALIZED_TOPIC"])
        events = (decode(record.value(), record.topic()) for record in records)
        return [event for event in events if event.message_id == message_id]

    [event] = eventually(normalized, timeout=30)
    assert event.provenance.request_id == request_id


def test_every_gateway_log_line_is_json_uvicorns_included(stack: Stack) -> None:
    assert stack.post("no-such-esp", b"{}").status_code == 404
    lines = json_lines(stack.log("gateway"))
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys()
        assert line["timestamp"].endswith("+00:00")
    loggers = {line["logger"] for line in lines}
    assert "uvicorn.error" in loggers and "espstream.gateway" in loggers
    assert not any("color_message" in line for line in lines)


def test_a_refused_request_is_logged_with_its_request_id(stack: Stack) -> None:
    response = stack.post("postmark", b"{}", auth=("esp", "wrong"))
    assert response.status_code == 401
    [line] = eventually(lambda: lines_with(stack, "gateway", response.headers["X-Request-Id"]), timeout=10)
    assert (line["status"], line["reason"], line["body_bytes"]) == (401, "auth", None)


def test_a_clients_request_id_is_never_taken(stack: Stack) -> None:
    # Anyone could send another webhook's id and muddle what operators follow through logs and provenance.
    body = postmark_delivery(f"claimed-{uuid.uuid4().hex}")
    claimed = f"lb-{uuid.uuid4()}"
    response = stack.post("postmark", body, headers={"Content-Type": "application/json", "X-Request-Id": claimed})
    assert HEX_ID.fullmatch(response.headers["X-Request-Id"])
    assert raw_header(stack, body, "request-id") == response.headers["X-Request-Id"] != claimed


def test_the_normalizers_dead_letter_line_carries_the_request_id(stack: Stack) -> None:
    response = stack.post("postmark", f"not JSON {uuid.uuid4().hex}".encode())
    assert response.status_code == 200
    [line] = eventually(lambda: lines_with(stack, "normalizer", response.headers["X-Request-Id"]), timeout=30)
    assert line["level"] == "WARNING" and line["message"].startswith("dead-lettering ")
    assert (line["esp"], line["stage"], line["error_class"]) == ("postmark", "normalize", "MalformedPayload")


def test_the_consumers_failure_lines_carry_the_request_id(stack: Stack) -> None:
    broken = f"broken-{uuid.uuid4().hex}"
    (stack.tmp / "broken.txt").write_text(broken + "\n")
    response = stack.post("postmark", postmark_delivery(broken))
    request_id = response.headers["X-Request-Id"]
    attempts = int(stack.env["ESPSTREAM_CONSUMER_MAX_ATTEMPTS"])
    lines = eventually(lambda: [l for l in lines_with(stack, "consumer", request_id) if l["level"] == "WARNING"] and lines_with(stack, "consumer", request_id), timeout=60)
    failures = [line for line in lines if line["level"] == "ERROR"]
    assert len(failures) == attempts
    assert all("tests.support.receivers_for_consumers.record failed" in line["message"] and "RuntimeError" in line["exc_info"] for line in failures)
    [dead_letter] = [line for line in lines if line["level"] == "WARNING"]
    assert dead_letter["receiver"] == "tests.support.receivers_for_consumers.record"
    assert dead_letter["group"] == stack.group and dead_letter["error_class"] == "RuntimeError"


# Formats, in this process and in a real command.


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(f"espstream.test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_extras_the_context_request_id_and_the_traceback_last() -> None:
    logger, stream = _logger(JsonLinesFormatter())
    token = REQUEST_ID.set("abc12345")
    try:
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("failed on %s", "é", extra={"esp": "postmark"})
    finally:
        REQUEST_ID.reset(token)
    logger.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert list(first) == ["timestamp", "level", "logger", "message", "esp", "request_id", "exc_info"]
    assert (first["level"], first["message"], first["esp"], first["request_id"]) == ("ERROR", "failed on é", "postmark", "abc12345")
    assert "ValueError: bad" in first["exc_info"]
    assert "request_id" not in second


def test_text_lines_end_with_the_structured_fields() -> None:
    logger, stream = _logger(TextFormatter())
    token = REQUEST_ID.set("abc12345")
    try:
        logger.warning("dead-lettering %s", "x", extra={"stage": "normalize"})
    finally:
        REQUEST_ID.reset(token)
    line = stream.getvalue().rstrip("\n")
    assert re.fullmatch(r"\S+ \S+ WARNING espstream\.test\.\w+: dead-lettering x stage=normalize request_id=abc12345", line)


LOG_ONE_LINE = "from espstream.plumbing.logs import configure; import logging; configure(); logging.getLogger('espstream.x').info('hello')"


def test_text_on_a_terminal_json_otherwise_unless_configured() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ESPSTREAM_LOG")}
    piped = subprocess.run([sys.executable, "-c", LOG_ONE_LINE], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(piped.stderr)["message"] == "hello"

    leader, follower = pty.openpty()
    try:
        subprocess.run([sys.executable, "-c", LOG_ONE_LINE], env=env, stderr=follower, timeout=60, check=True)
        on_terminal = os.read(leader, 65536).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert on_terminal.rstrip().endswith(" INFO espstream.x: hello")

    forced = subprocess.run([sys.executable, "-c", LOG_ONE_LINE], env={**env, "ESPSTREAM_LOG_FORMAT": "text"}, capture_output=True, text=True, timeout=60)
    assert forced.stderr.rstrip().endswith(" INFO espstream.x: hello")
    quiet = subprocess.run([sys.executable, "-c", LOG_ONE_LINE], env={**env, "ESPSTREAM_LOG_LEVEL": "WARNING"}, capture_output=True, text=True, timeout=60)
    assert quiet.stderr == ""


def test_an_unknown_log_format_stops_any_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "espstream", "topics", "ensure"],
        env={**os.environ, "ESPSTREAM_LOG_FORMAT": "xml"}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "espstream topics ensure: ESPSTREAM_LOG_FORMAT: Input should be 'json' or 'text'\n"


def test_an_async_receivers_log_lines_carry_the_request_id_of_the_event_in_hand() -> None:
    from espstream.consumers.dispatch import AsyncLoop

    logger, stream = _logger(JsonLinesFormatter())

    async def receiver() -> None:
        logger.info("handling")

    loop = AsyncLoop()
    try:
        for request_id in ("req-aaaa1111", "req-bbbb2222"):
            token = REQUEST_ID.set(request_id)
            try:
                loop.run(receiver())
            finally:
                REQUEST_ID.reset(token)
    finally:
        loop.close()
    assert [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()] == ["req-aaaa1111", "req-bbbb2222"]
