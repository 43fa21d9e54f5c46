"""The console's pages over a normalized topic of 100k events: server time per page (goal < 200 ms).

``measure()`` pre-loads ``events`` normalized events (export_bench's: Postmark
webhooks of 400 templates, so one message id and one recipient each have
events/400 events), starts `espstream console` on them, waits until its index
has read them all, then requests each page ``REQUESTS`` times after a warm-up:
the lookup by message id and by recipient (answered from the index) and the
recent events (the newest records of each partition, read per request). The
figure is the server's own time (the console's ``Server-Timing`` header);
the client's wall time is beside it. ``python -m benchmarks.console_bench
[EVENTS]`` runs it once on a fresh embedded broker.
"""

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from espstream.embedded import free_port

from .export_bench import PARTITIONS, normalized_events, preload
from .stack import HOST, Service, running, wait_for_http

GOAL_MS = 200.0
WARMUP = 5
REQUESTS = 40
INDEX_TIMEOUT = 600.0


def _server_ms(response: httpx.Response) -> float:
    return float(re.search(r"dur=([\d.]+)", response.headers["Server-Timing"]).group(1))


def _page(client: httpx.Client, path: str, params: dict[str, str]) -> dict:
    for _ in range(WARMUP):
        client.get(path, params=params).raise_for_status()
    server, wall = [], []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(path, params=params)
        wall.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        server.append(_server_ms(response))
    server.sort()
    return {
        "path": path, "params": params, "requests": REQUESTS, "rows": response.text.count("<tr>") - 1,
        "bytes": len(response.content), "server_p50_ms": statistics.median(server),
        "server_p95_ms": server[int(len(server) * 0.95) - 1], "server_max_ms": server[-1],
        "wall_p50_ms": statistics.median(wall),
    }


def measure(bootstrap_servers: str, registry_url: str, events: int, log_dir: Path) -> dict:
    """Pre-load ``events`` events, start the console on them, time its pages."""
    topic = f"bench-console-{uuid.uuid4().hex[:8]}.normalized"
    preload(bootstrap_servers, registry_url, topic, events)
    sample = normalized_events(1)[0]
    port = free_port()
    env = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "ESPSTREAM_SCHEMA_REGISTRY_URL": registry_url,
           "ESPSTREAM_NORMALIZED_TOPIC": topic, "ESPSTREAM_CONSOLE_HOST": HOST, "ESPSTREAM_CONSOLE_PORT": str(port)}
    base = f"http://{HOST}:{port}"
    with running(Service(["console"], env, log_dir / "console.log"), port), httpx.Client(base_url=base, timeout=30) as client:
        started = time.monotonic()
        wait_for_http(f"{base}/readyz", INDEX_TIMEOUT)
        while client.get("/readyz").json()["events"] < events:
            if time.monotonic() - started > INDEX_TIMEOUT:
                raise TimeoutError(f"the console's index did not read {events} events in {INDEX_TIMEOUT:.0f} s")
            time.sleep(0.2)
        index_seconds = time.monotonic() - started
        pages = {
            "lookup_message": _page(client, "/lookup", {"q": sample.message_id}),
            "lookup_recipient": _page(client, "/lookup", {"q": sample.recipient}),
            "recent": _page(client, "/events", {}),
        }
    worst = max(page["server_p95_ms"] for page in pages.values())
    return {"events": events, "partitions": PARTITIONS, "index_seconds": index_seconds, "pages": pages,
            "worst_p95_ms": worst, "goal_ms": GOAL_MS, "met": worst < GOAL_MS}


def main(argv: list[str] | None = None) -> int:
    from .stack import fresh_broker, registry

    parser = argparse.ArgumentParser(prog="python -m benchmarks.console_bench", description=__doc__.splitlines()[0])
    parser.add_argument("events", type=int, nargs="?", default=100_000, help="pre-loaded events (default 100,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="espstream-console-bench-") as work:
        log_dir = Path(work)
        with fresh_broker(log_dir, "console") as (broker, broker_env), registry(log_dir, "console", broker_env) as (_, env):
            result = measure(broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], args.events, log_dir)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
