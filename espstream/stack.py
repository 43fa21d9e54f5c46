"""``espstream run``: every service of the pipeline on this machine, stopped together.

With no ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS it starts the embedded broker, by
default on durable storage in ESPSTREAM_DATA_DIR (``.espstream/``): a restarted
stack has its topics, records, committed offsets and registered schemas. With no
ESPSTREAM_SCHEMA_REGISTRY_URL it starts the development registry (its schemas
are records on the broker). Otherwise it uses those. One stack per data folder:
a second ``espstream run`` says which one runs instead of starting half a stack.
"""

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import ensure_topics

from .embedded import BrokerUnavailable, EmbeddedBroker, port_in_use, wait_for_port

DEMO_GROUP = "espstream-demo"
# Metrics, each service on a port of its own.
GATEWAY_METRICS_PORT = 9100
NORMALIZER_METRICS_PORT = 9101
DEMO_CONSUMER_METRICS_PORT = 9102
STATUS_METRICS_PORT = 9103


class StackSettings(CommonSettings):
    """What ``espstream run`` itself reads; each service reads its own settings too."""

    # durable: the embedded broker keeps everything in data_dir (a produce is acknowledged once
    # written there, ~8 ms instead of ~0.4 ms). memory: nothing survives a stop; for throwaway runs.
    embedded_storage: Literal["durable", "memory"] = "durable"
    # The embedded broker's storage, its log, and the lock that allows one stack per folder.
    data_dir: Path = Path(".espstream")
    embedded_kafka_port: int = 9092
    gateway_port: int = 8000
    registry_port: int = 8081
    console_port: int = 8090
CURL_BODY = (
    '{"RecordType":"Delivery","MessageStream":"outbound",'
    '"MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Recipient":"alice@example.com",'
    '"DeliveredAt":"2026-11-23T16:33:54.9070259Z","Details":"Test delivery webhook details",'
    '"Tag":"welcome","Metadata":{"customer":"42"}}'
)


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str]):
        self.name = name
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "espstream", *args], env=env, start_new_session=True
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_stack() -> int:
    env = dict(os.environ)
    stack = StackSettings()
    embedded_broker = "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS" not in env
    dev_registry = "ESPSTREAM_SCHEMA_REGISTRY_URL" not in env
    lock = _lock(stack.data_dir)
    if lock is None:
        return 1
    gateway_env = {**env, "ESPSTREAM_GATEWAY_HOST": "127.0.0.1", "ESPSTREAM_GATEWAY_PORT": str(stack.gateway_port)}
    gateway_env.setdefault("ESPSTREAM_GATEWAY_METRICS_PORT", str(GATEWAY_METRICS_PORT))
    normalizer_env = {**env, "ESPSTREAM_NORMALIZER_METRICS_PORT": env.get("ESPSTREAM_NORMALIZER_METRICS_PORT", str(NORMALIZER_METRICS_PORT))}
    consumer_env = {**env, "ESPSTREAM_CONSUMER_METRICS_PORT": env.get("ESPSTREAM_CONSUMER_METRICS_PORT", str(DEMO_CONSUMER_METRICS_PORT))}
    status_env = {**env, "ESPSTREAM_STATUS_METRICS_PORT": env.get("ESPSTREAM_STATUS_METRICS_PORT", str(STATUS_METRICS_PORT))}
    console_env = {**env, "ESPSTREAM_CONSOLE_HOST": "127.0.0.1", "ESPSTREAM_CONSOLE_PORT": str(stack.console_port)}
    listeners = [
        ("the embedded broker", "ESPSTREAM_EMBEDDED_KAFKA_PORT", stack.embedded_kafka_port if embedded_broker else 0),
        ("the development registry", "ESPSTREAM_REGISTRY_PORT", stack.registry_port if dev_registry else 0),
        ("the gateway", "ESPSTREAM_GATEWAY_PORT", stack.gateway_port),
        ("the console", "ESPSTREAM_CONSOLE_PORT", stack.console_port),
        *(
            (f"the {service}'s metrics", name, int(service_env.get(name) or 0))
            for service, name, service_env in (
                ("gateway", "ESPSTREAM_GATEWAY_METRICS_PORT", gateway_env),
                ("normalizer", "ESPSTREAM_NORMALIZER_METRICS_PORT", normalizer_env),
                ("demo consumer", "ESPSTREAM_CONSUMER_METRICS_PORT", consumer_env),
                ("status service", "ESPSTREAM_STATUS_METRICS_PORT", status_env),
            )
        ),
    ]
    taken = [f"{port} ({what}, {setting})" for what, setting, port in listeners if port and port_in_use("127.0.0.1", port)]
    if taken:
        print(f"espstream run: in use on 127.0.0.1: {', '.join(taken)}; is another program listening there? Stop it, or set those ports", file=sys.stderr)
        return 1
    broker = None
    children: list[Child] = []
    stop_requested = False

    def request_stop(*_args: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if embedded_broker:
            durable = stack.embedded_storage == "durable"
            log_path = stack.data_dir / "broker.log"
            broker = EmbeddedBroker(stack.embedded_kafka_port, log_path=log_path, data_dir=stack.data_dir if durable else None)
            try:
                broker.start()
            except BrokerUnavailable as error:
                print(f"espstream run: {error}", file=sys.stderr)
                return 1
            for service_env in (env, gateway_env, normalizer_env, consumer_env, status_env, console_env):
                service_env.update(broker.client_env())
            kept = f"durable, data in {stack.data_dir}/" if durable else "memory only: nothing is kept after a stop"
            print(f"embedded broker ({kept}) on {broker.bootstrap_servers}, log {log_path}", flush=True)
        settings = CommonSettings(kafka_bootstrap_servers=env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"])
        ensure_topics(settings)

        if dev_registry:
            env["ESPSTREAM_SCHEMA_REGISTRY_URL"] = f"http://127.0.0.1:{stack.registry_port}"
            env.setdefault("ESPSTREAM_REGISTRY_HOST", "127.0.0.1")
            env["ESPSTREAM_REGISTRY_PORT"] = str(stack.registry_port)
            children.append(Child("registry", ["registry"], env))
        for service_env in (gateway_env, normalizer_env, consumer_env, status_env, console_env):
            service_env["ESPSTREAM_SCHEMA_REGISTRY_URL"] = env["ESPSTREAM_SCHEMA_REGISTRY_URL"]
        registry = urlsplit(env["ESPSTREAM_SCHEMA_REGISTRY_URL"])
        wait_for_port(registry.hostname or "127.0.0.1", registry.port or 80, timeout=30)

        if not env.get("ESPSTREAM_WEBHOOK_SECRET"):
            gateway_env["ESPSTREAM_ALLOW_UNAUTHENTICATED"] = "1"
            print(
                "\n*** WARNING: no ESPSTREAM_WEBHOOK_SECRET: the gateway accepts webhooks WITHOUT credentials. ***\n"
                "*** It listens on 127.0.0.1 only. Never expose this development stack.                     ***\n",
                flush=True,
            )
        gateway_env.setdefault("ESPSTREAM_GATEWAY_WORKERS", str(available_cores()))
        children.append(Child("gateway", ["gateway"], gateway_env))
        children.append(Child("normalizer", ["normalize"], normalizer_env))
        children.append(Child("demo consumer", ["consume", "espstream.consumers.demo", "--group", DEMO_GROUP], consumer_env))
        children.append(Child("status", ["status"], status_env))
        # With the demo consumer's receivers, so that its group's dead letters can be redriven from a page.
        children.append(Child("console", ["console", "espstream.consumers.demo"], console_env))
        wait_for_port("127.0.0.1", stack.gateway_port, timeout=30)
        wait_for_port("127.0.0.1", stack.console_port, timeout=30)
        _announce(stack.gateway_port, stack.console_port, env.get("ESPSTREAM_WEBHOOK_SECRET"), _metrics_urls(gateway_env, normalizer_env, consumer_env, status_env))

        while not stop_requested:
            for child in children:
                if child.process.poll() is not None:
                    print(f"espstream: {child.name} exited with {child.process.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        # The gateway first (no new webhooks), then the services in turn, the broker last.
        gateway_first = sorted(reversed(children), key=lambda c: c.name != "gateway")
        for child in gateway_first:
            child.stop()
        if broker is not None:
            broker.stop()
        lock.close()
        print("espstream: stopped", flush=True)


def _lock(data_dir: Path) -> IO[str] | None:
    """The data folder's lock, held while the stack runs; None (said on stderr) if another stack holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "run.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        lock.close()
        print(
            f"espstream run: a stack is already running with {data_dir}/ (pid {pid}); stop it first"
            " (Ctrl-C in its terminal), or give this one another ESPSTREAM_DATA_DIR",
            file=sys.stderr,
        )
        return None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _metrics_urls(gateway_env: dict[str, str], normalizer_env: dict[str, str], consumer_env: dict[str, str], status_env: dict[str, str]) -> str:
    """Where each service's metrics are, as its settings say (0: not served)."""
    host = gateway_env.get("ESPSTREAM_METRICS_HOST", "127.0.0.1")
    urls = []
    for env, name in (
        (gateway_env, "ESPSTREAM_GATEWAY_METRICS_PORT"),
        (normalizer_env, "ESPSTREAM_NORMALIZER_METRICS_PORT"),
        (consumer_env, "ESPSTREAM_CONSUMER_METRICS_PORT"),
        (status_env, "ESPSTREAM_STATUS_METRICS_PORT"),
    ):
        port = int(env.get(name) or 0)
        if port:
            urls.append(f"http://{host}:{port}/metrics")
    return "  ".join(urls)


def _announce(gateway_port: int, console_port: int, secret: str | None, metrics: str) -> None:
    base = f"http://127.0.0.1:{gateway_port}"
    auth = " -u 'USER:PASSWORD'" if secret else ""  # one of ESPSTREAM_WEBHOOK_SECRET's; never printed
    print(
        "\nespstream is running.\n"
        f"  webhook URLs: {base}/webhooks/<esp>/tracking/  (e.g. {base}/webhooks/postmark/tracking/)\n"
        f"  API docs:     {base}/docs\n"
        f"  console:      http://127.0.0.1:{console_port}/  (events, message lookup, dead letters)\n"
        f"  metrics:      {metrics}\n"
        "  Try it (the demo consumer prints the event):\n\n"
        f"curl -sS -X POST{auth} {base}/webhooks/postmark/tracking/ -H 'Content-Type: application/json' -d '{CURL_BODY}'\n\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
