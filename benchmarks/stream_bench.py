"""Normalizer vs a bare librdkafka passthrough, over the same pre-loaded raw records on a fresh broker each."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer

from espstream.embedded import free_port
from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.config import CommonSettings

from .payloads import raw_records
from .stack import Service, fresh_broker, run_json_worker, running
from .topic_count import read_count

# A record takes well under a millisecond even in the slower loop; this bounds a stuck run.
WORKER_DEADLINE_SECONDS = 240.0


def preload(bootstrap_servers: str, topic: str, count: int) -> float:
    """Write ``count`` raw records as the gateway would, and read them back; the seconds it took."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )
    records = list(raw_records(count))
    started = time.perf_counter()
    produce_all(producer, topic, records)
    stored = read_count(bootstrap_servers, topic, count)
    if stored != count:
        raise RuntimeError(f"pre-loading the raw topic: {stored} records stored, {count} written")
    return time.perf_counter() - started


def produce_all(producer: Producer, topic: str, records: list[tuple[bytes, list]]) -> None:
    """Every (value, headers) of ``records`` produced to ``topic`` and acknowledged."""
    for value, headers in records:
        while True:
            try:
                producer.produce(topic, value, headers=headers)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError(f"producing to {topic}: records not acknowledged")


def measure(kind: str, count: int, log_dir: Path, members: int = 1) -> dict:
    """One run of ``kind`` (a loop of benchmarks.stream_workers) over ``count`` fresh raw records.

    ``members`` > 1 (normalizer only): that many members of the normalizer's group at once, as
    ``espstream normalize --processes N`` runs them; the run spans the first member's first batch to
    the last member's last commit, CPU summed over the members.
    """
    with fresh_broker(log_dir, kind) as (broker, broker_env):
        env = {**os.environ, **broker_env}
        settings = CommonSettings(kafka_bootstrap_servers=broker.bootstrap_servers)
        preload_seconds = preload(broker.bootstrap_servers, settings.raw_topic, count)
        load_before = os.getloadavg()[0]
        registry_port = free_port()
        env["ESPSTREAM_SCHEMA_REGISTRY_URL"] = f"http://127.0.0.1:{registry_port}"
        registry = Service(
            ["registry"],
            {**broker_env, "ESPSTREAM_REGISTRY_HOST": "127.0.0.1", "ESPSTREAM_REGISTRY_PORT": str(registry_port)},
            log_dir / f"{kind}-registry.log",
        )
        # The passthrough has no use for a registry; it runs beside both loops all the same.
        with running(registry, registry_port):
            if members == 1:
                output = run_json_worker(
                    "benchmarks.stream_workers",
                    [kind, str(count), str(WORKER_DEADLINE_SECONDS)],
                    env,
                    log_dir / f"{kind}.log",
                    timeout=WORKER_DEADLINE_SECONDS + 60,
                )
                result = _last_json(output)
            else:
                result = _members(count, members, env, log_dir / f"{kind}-{members}.log")
        result["preload_seconds"] = preload_seconds
        result["load_average_before"] = load_before
        result["output_records"] = read_count(broker.bootstrap_servers, settings.normalized_topic, count)
        result["dead_letters"] = read_count(broker.bootstrap_servers, settings.dlq_topic, 0, idle_seconds=1.0)
    return result


def _last_json(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def _members(count: int, members: int, env: dict[str, str], log_path: Path) -> dict:
    """``members`` normalizer members started together, each until the topic is drained; their runs combined."""
    with open(log_path, "ab") as log:
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.stream_workers", "normalizer-member", str(count), str(WORKER_DEADLINE_SECONDS)],
                env=env, stdout=subprocess.PIPE, stderr=log,
            )
            for _ in range(members)
        ]
        outputs = [worker.communicate(timeout=WORKER_DEADLINE_SECONDS + 60)[0].decode() for worker in workers]
    runs = [_last_json(output) for output in outputs]
    busy = [run for run in runs if run["started_at"] is not None] or [{"started_at": 0.0, "finished_at": 0.0}]
    started = min(run["started_at"] for run in busy)
    finished = max(run["finished_at"] for run in busy)
    records = sum(run["records"] for run in runs)
    seconds = finished - started
    return {
        "kind": f"normalizer x{members}",
        "members": runs,
        "records": records,
        "complete": records >= count,
        "seconds": seconds,
        "per_second": records / seconds if seconds > 0 else None,
        "cpu_us_per_record": sum(run["cpu_seconds"] for run in runs if run["started_at"]) / records * 1e6 if records else None,
    }


def settings() -> dict:
    """The shape both loops run with (ESPSTREAM_* variables apply, as for the services)."""
    current = NormalizerSettings()
    return {"partitions": current.topic_partitions, "batch_size": current.normalizer_batch_size}
