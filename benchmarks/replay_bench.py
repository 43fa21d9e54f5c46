"""Replay throughput: `espstream replay` over N pre-loaded raw records, in events per second.

The records are the stream benchmark's (benchmarks.payloads, written by
stream_bench.preload as the gateway writes them) on topics of their own, so a
broker and registry already running can be used. The replay runs as users run
it, `espstream replay --json` in a process of its own; its rate is over its busy
time (first record read to last commit), beside the whole run's wall time
(process start, planning the range, registering the schema included).

``python -m benchmarks.replay_bench [RECORDS]`` measures once on a fresh
embedded broker and registry and prints the result as JSON.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import ensure_topics

from .stack import fresh_broker, registry
from .stream_bench import preload
from .topic_count import read_count

# Well over what a quick run needs; bounds a stuck replay.
REPLAY_DEADLINE_SECONDS = 600.0
QUICK_RECORDS = 5_000


def measure(bootstrap_servers: str, registry_url: str, records: int, log_dir: Path) -> dict:
    """Pre-load ``records`` raw records on new topics, replay them once; the figures."""
    prefix = f"replay-bench-{uuid.uuid4().hex[:8]}"
    settings = CommonSettings(
        kafka_bootstrap_servers=bootstrap_servers,
        schema_registry_url=registry_url,
        raw_topic=f"{prefix}.raw",
        normalized_topic=f"{prefix}.normalized",
        dlq_topic=f"{prefix}.dlq",
    )
    ensure_topics(settings)
    preload_seconds = preload(bootstrap_servers, settings.raw_topic, records)
    env = {
        **os.environ,
        "ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "ESPSTREAM_SCHEMA_REGISTRY_URL": registry_url,
        "ESPSTREAM_RAW_TOPIC": settings.raw_topic,
        "ESPSTREAM_NORMALIZED_TOPIC": settings.normalized_topic,
        "ESPSTREAM_DLQ_TOPIC": settings.dlq_topic,
    }
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_dir / f"{prefix}.log", "ab") as log:
        done = subprocess.run(
            [sys.executable, "-m", "espstream", "replay", "--json", "--progress-interval", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=REPLAY_DEADLINE_SECONDS,
        )
    wall_seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"espstream replay exited {done.returncode}; see {log_dir / f'{prefix}.log'}")
    summary = json.loads([line for line in done.stdout.decode().splitlines() if line.startswith("{")][-1])
    busy = summary["busy_seconds"]
    return {
        "kind": "replay",
        "records": summary["read"],
        "events": summary["events"],
        "dead_letters": summary["dead_letters"],
        "complete": summary["status"] == "finished" and summary["read"] == records,
        "seconds": busy,
        "events_per_second": summary["events"] / busy if busy else None,
        "records_per_second": summary["read"] / busy if busy else None,
        "wall_seconds": wall_seconds,
        "preload_seconds": preload_seconds,
        "load_average_before": load_before,
        "output_records": read_count(bootstrap_servers, settings.normalized_topic, summary["events"]),
    }


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else QUICK_RECORDS
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as directory:
        log_dir = Path(directory)
        with fresh_broker(log_dir, "replay") as (broker, broker_env), registry(log_dir, "replay", broker_env) as (_, env):
            result = measure(broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], records, log_dir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
