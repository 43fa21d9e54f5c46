"""The gateway at saturation: 60 s of wrk, statuses counted, resident memory sampled; then a broker outage.

Saturation: after a warm-up, wrk runs flat out while the gateway's RSS is sampled
every few seconds; only 200 and 503 may come back, and memory must stay flat.
Outage: the same load while the embedded broker is frozen (SIGSTOP, then SIGCONT:
it keeps its memory, so nothing is lost on the broker's side): the gateway must
answer 503 while the broker is gone and 200 again after, never anything else.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from espstream.embedded import free_port
from espstream.plumbing.config import CommonSettings

from . import http_bench
from .payloads import PASSWORD, USER, WEBHOOK_PATH
from .stack import HOST, Service, fresh_broker, running, wait_for_http
from .topic_count import read_count

WARMUP_SECONDS = 10
SAMPLE_SECONDS = 3.0
OUTAGE_LOAD_SECONDS = 30
OUTAGE_AT_SECONDS = 10.0
OUTAGE_SECONDS = 10.0


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def _gateway_env(broker_env: dict[str, str], port: int) -> dict[str, str]:
    return {**broker_env, "ESPSTREAM_WEBHOOK_SECRET": f"{USER}:{PASSWORD}",
            "ESPSTREAM_GATEWAY_HOST": HOST, "ESPSTREAM_GATEWAY_PORT": str(port)}


def _status_summary(result: dict) -> dict:
    statuses = {int(k): v for k, v in result.get("statuses", {}).items()}
    return {
        "requests": result["requests"],
        "requests_per_second": result["requests_per_second"],
        "status_200": statuses.get(200, 0),
        "status_503": statuses.get(503, 0),
        "status_other": {str(k): v for k, v in statuses.items() if k not in (200, 503)},
        "socket_errors": result["socket_errors"],
        "timeouts": result["timeouts"],
        "latency_p50_us": result["latency_p50_us"],
        "latency_p99_us": result["latency_p99_us"],
        "latency_max_us": result["latency_max_us"],
    }


def _timed_wrk(wrk: str, lua: Path, url: str, seconds: int, log_path: Path, during) -> dict:
    """wrk for ``seconds`` in the background while ``during(started)`` runs; wrk's result."""
    command = http_bench.wrk_command(wrk, lua, url, seconds)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        during(started)
        stdout, stderr = process.communicate(timeout=seconds + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return http_bench.parse_wrk(command, process.returncode, stdout, stderr, log_path)


def saturation(wrk: str, seconds: int, log_dir: Path) -> dict:
    with fresh_broker(log_dir, "load") as (broker, broker_env):
        port = free_port()
        with running(Service(["gateway"], _gateway_env(broker_env, port), log_dir / "load-gateway.log"), port) as gateway:
            wait_for_http(f"http://{HOST}:{port}/readyz", timeout=30)
            url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
            lua = http_bench.write_lua(log_dir / "post-statuses.lua", count_statuses=True)
            warmup = http_bench.run_wrk(wrk, lua, url, WARMUP_SECONDS, log_dir / "wrk-load.log")
            pid = gateway.process.pid
            samples: list[tuple[float, float]] = []

            def sample(started: float) -> None:
                while time.monotonic() - started < seconds:
                    samples.append((round(time.monotonic() - started, 1), _rss_mb(pid)))
                    time.sleep(SAMPLE_SECONDS)
                samples.append((round(time.monotonic() - started, 1), _rss_mb(pid)))

            result = _timed_wrk(wrk, lua, url, seconds, log_dir / "wrk-load.log", sample)
        answered_200 = _status_summary(warmup)["status_200"] + _status_summary(result)["status_200"]
        raw_records = read_count(broker.bootstrap_servers, CommonSettings().raw_topic, answered_200 + 2 * http_bench.CONNECTIONS,
                                 idle_seconds=2.0)
    start_rss, end_rss = samples[0][1], samples[-1][1]
    return {
        "seconds": seconds,
        "warmup_seconds": WARMUP_SECONDS,
        **_status_summary(result),
        "warmup_requests": warmup["requests"],
        "answered_200": answered_200,
        "raw_records": raw_records,
        "rss_mb_after_warmup": start_rss,
        "rss_mb_end": end_rss,
        "rss_mb_max": max(mb for _, mb in samples),
        "rss_growth": (end_rss - start_rss) / start_rss,
        "rss_samples": samples,
    }


def outage(wrk: str, log_dir: Path) -> dict:
    """wrk for OUTAGE_LOAD_SECONDS, the broker frozen from OUTAGE_AT_SECONDS for OUTAGE_SECONDS."""
    with fresh_broker(log_dir, "outage") as (broker, broker_env):
        port = free_port()
        with running(Service(["gateway"], _gateway_env(broker_env, port), log_dir / "outage-gateway.log"), port) as gateway:
            wait_for_http(f"http://{HOST}:{port}/readyz", timeout=30)
            url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
            lua = http_bench.write_lua(log_dir / "post-statuses.lua", count_statuses=True)
            warmup = http_bench.run_wrk(wrk, lua, url, 5, log_dir / "wrk-outage.log")
            broker_pid = broker._process.pid
            marks: dict[str, float] = {}

            def freeze_broker(started: float) -> None:
                time.sleep(OUTAGE_AT_SECONDS)
                os.kill(broker_pid, signal.SIGSTOP)
                marks["stopped_at"] = time.monotonic() - started
                try:
                    time.sleep(OUTAGE_SECONDS)
                finally:
                    os.kill(broker_pid, signal.SIGCONT)
                marks["continued_at"] = time.monotonic() - started

            result = _timed_wrk(wrk, lua, url, OUTAGE_LOAD_SECONDS, log_dir / "wrk-outage.log", freeze_broker)
            alive_after = gateway.process.poll() is None
            wait_for_http(f"http://{HOST}:{port}/readyz", timeout=30)  # back to ready after the outage
    return {
        "seconds": OUTAGE_LOAD_SECONDS,
        **marks,
        **_status_summary(result),
        "warmup_non_2xx": warmup["non_2xx"],
        "gateway_alive_after": alive_after,
    }


def run(seconds: int, log_dir: Path, progress=print) -> dict:
    wrk = http_bench.wrk_binary()
    started = time.monotonic()
    steady = saturation(wrk, seconds, log_dir)
    progress(f"  load: {seconds} s at saturation: {steady['requests_per_second']:,.0f} req/s, 200 {steady['status_200']:,}, "
             f"503 {steady['status_503']:,}, other {steady['status_other']}, socket errors {steady['socket_errors']}, "
             f"RSS {steady['rss_mb_after_warmup']:.1f} -> {steady['rss_mb_end']:.1f} MiB ({time.monotonic() - started:.0f} s)")
    started = time.monotonic()
    frozen = outage(wrk, log_dir)
    progress(f"  load: broker outage: 200 {frozen['status_200']:,}, 503 {frozen['status_503']:,}, other {frozen['status_other']}, "
             f"socket errors {frozen['socket_errors']} ({time.monotonic() - started:.0f} s)")
    return {"saturation": steady, "outage": frozen,
            "settings": {"threads": http_bench.THREADS, "connections": http_bench.CONNECTIONS,
                         "sample_seconds": SAMPLE_SECONDS, "outage_seconds": OUTAGE_SECONDS,
                         "outage_at_seconds": OUTAGE_AT_SECONDS}}
