"""``espstream run``: every service of the pipeline on this machine, stopped together.

With no ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS it starts the embedded broker, with no
ESPSTREAM_SCHEMA_REGISTRY_URL the development registry; otherwise it uses those.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import ensure_topics

from .embedded import EmbeddedBroker, wait_for_port

DEMO_GROUP = "espstream-demo"
GATEWAY_PORT = 8000
# Metrics, each service on a port of its own.
GATEWAY_METRICS_PORT = 9100
NORMALIZER_METRICS_PORT = 9101
DEMO_CONSUMER_METRICS_PORT = 9102
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
    broker = None
    children: list[Child] = []
    stop_requested = False

    def request_stop(*_args: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS" not in env:
            log_path = Path(tempfile.gettempdir()) / "espstream-tansu.log"
            broker = EmbeddedBroker(9092, log_path=log_path).start()
            env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
            print(f"embedded broker (memory only) on {broker.bootstrap_servers}, log {log_path}", flush=True)
        settings = CommonSettings(kafka_bootstrap_servers=env["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"])
        ensure_topics(settings)

        if "ESPSTREAM_SCHEMA_REGISTRY_URL" not in env:
            env["ESPSTREAM_SCHEMA_REGISTRY_URL"] = "http://127.0.0.1:8081"
            env.setdefault("ESPSTREAM_REGISTRY_HOST", "127.0.0.1")
            env.setdefault("ESPSTREAM_REGISTRY_PORT", "8081")
            children.append(Child("registry", ["registry"], env))
        registry = urlsplit(env["ESPSTREAM_SCHEMA_REGISTRY_URL"])
        wait_for_port(registry.hostname or "127.0.0.1", registry.port or 80, timeout=30)

        gateway_env = {**env, "ESPSTREAM_GATEWAY_HOST": "127.0.0.1", "ESPSTREAM_GATEWAY_PORT": str(GATEWAY_PORT)}
        if not env.get("ESPSTREAM_WEBHOOK_SECRET"):
            gateway_env["ESPSTREAM_ALLOW_UNAUTHENTICATED"] = "1"
            print(
                "\n*** WARNING: no ESPSTREAM_WEBHOOK_SECRET: the gateway accepts webhooks WITHOUT credentials. ***\n"
                "*** It listens on 127.0.0.1 only. Never expose this development stack.                     ***\n",
                flush=True,
            )
        gateway_env.setdefault("ESPSTREAM_GATEWAY_METRICS_PORT", str(GATEWAY_METRICS_PORT))
        gateway_env.setdefault("ESPSTREAM_GATEWAY_WORKERS", str(available_cores()))
        normalizer_env = {**env, "ESPSTREAM_NORMALIZER_METRICS_PORT": env.get("ESPSTREAM_NORMALIZER_METRICS_PORT", str(NORMALIZER_METRICS_PORT))}
        consumer_env = {**env, "ESPSTREAM_CONSUMER_METRICS_PORT": env.get("ESPSTREAM_CONSUMER_METRICS_PORT", str(DEMO_CONSUMER_METRICS_PORT))}
        children.append(Child("gateway", ["gateway"], gateway_env))
        children.append(Child("normalizer", ["normalize"], normalizer_env))
        children.append(Child("demo consumer", ["consume", "espstream.consumers.demo", "--group", DEMO_GROUP], consumer_env))
        wait_for_port("127.0.0.1", GATEWAY_PORT, timeout=30)
        _announce(env.get("ESPSTREAM_WEBHOOK_SECRET"), _metrics_urls(gateway_env, normalizer_env, consumer_env))

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
        print("espstream: stopped", flush=True)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _metrics_urls(gateway_env: dict[str, str], normalizer_env: dict[str, str], consumer_env: dict[str, str]) -> str:
    """Where each service's metrics are, as its settings say (0: not served)."""
    host = gateway_env.get("ESPSTREAM_METRICS_HOST", "127.0.0.1")
    urls = []
    for env, name in (
        (gateway_env, "ESPSTREAM_GATEWAY_METRICS_PORT"),
        (normalizer_env, "ESPSTREAM_NORMALIZER_METRICS_PORT"),
        (consumer_env, "ESPSTREAM_CONSUMER_METRICS_PORT"),
    ):
        port = int(env.get(name) or 0)
        if port:
            urls.append(f"http://{host}:{port}/metrics")
    return "  ".join(urls)


def _announce(secret: str | None, metrics: str) -> None:
    base = f"http://127.0.0.1:{GATEWAY_PORT}"
    auth = " -u 'USER:PASSWORD'" if secret else ""  # one of ESPSTREAM_WEBHOOK_SECRET's; never printed
    print(
        "\nespstream is running.\n"
        f"  webhook URLs: {base}/webhooks/<esp>/tracking/  (e.g. {base}/webhooks/postmark/tracking/)\n"
        f"  API docs:     {base}/docs\n"
        f"  metrics:      {metrics}\n"
        "  Try it (the demo consumer prints the event):\n\n"
        f"curl -sS -X POST{auth} {base}/webhooks/postmark/tracking/ -H 'Content-Type: application/json' -d '{CURL_BODY}'\n\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
