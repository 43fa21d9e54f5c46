"""End-to-end latency, POST to receiver, at a constant offered rate; memory of every process.

The client (benchmarks.openloop) first runs against the bare endpoint at each
rate, to show what this machine can offer at all. Then, per rate, a fresh
stack: broker, registry, `espstream gateway`, `espstream normalize`,
`espstream consume benchmarks.e2e_receiver`. Latency is the receiver's
arrival time minus the request's send time (its due time when the client was
late: wrk2's correction), one monotonic clock for every process.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from espstream.embedded import free_port
from espstream.stack import available_cores

from .payloads import PASSWORD, USER, WEBHOOK_PATH, basic_auth_header, message_id, postmark_body
from .hops_bench import measure_hops
from .stack import HOST, Service, fresh_broker, registry, running, wait_for_http

WARMUP_SECONDS = 5.0
DRAIN_TIMEOUT_SECONDS = 60.0  # after the last request: how long arrivals may take to come in
STALL_SECONDS = 15.0  # ... unless none came for this long
FIRST_NUMBER = 1_000_000  # webhook numbers (ids) the load uses; the priming one is just below


def percentiles(values: list[float]) -> dict:
    """p50, p95, p99 and max of ``values`` in milliseconds (nearest rank)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3  # noqa: E731
    return {"count": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": ordered[-1] * 1e3}


def offer(url: str, rate: float, seconds: float, first_number: int, log_dir: Path, name: str) -> subprocess.Popen:
    """The open-loop client, started; it writes its record to ``log_dir/<name>-client.json``."""
    out = log_dir / f"{name}-client.json"
    with open(log_dir / f"{name}-client.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks.openloop", url, str(rate), str(seconds), str(first_number), str(out)],
            stdout=log, stderr=subprocess.STDOUT,
        )


def client_summary(record: dict, warmup: float) -> dict:
    """What the client offered after the warm-up: the rate it achieved, its lateness, the statuses."""
    window = [i for i in range(len(record["due"])) if i / record["rate"] >= warmup]
    measured = [i for i in window if record["sent"][i] > 0]  # the rest were never sent: the client fell too far behind
    sent = [record["sent"][i] for i in measured]
    statuses: dict[str, int] = {}
    for i in measured:
        key = str(record["status"][i])
        statuses[key] = statuses.get(key, 0) + 1
    every_sent = [t for t in record["sent"] if t > 0]
    return {
        "offered_rate": record["rate"],
        "requests": len(measured),
        "unsent": len(window) - len(measured),
        # After the warm-up; over the whole run too, which is all there is when the client fell behind
        # so far that nothing due after the warm-up went out.
        "achieved_rate": _rate(sent),
        "achieved_rate_whole_run": _rate(every_sent),
        "sent_whole_run": len(every_sent),
        "client_late": percentiles([max(0.0, record["sent"][i] - record["due"][i]) for i in measured]),
        "http_latency": percentiles([record["answered"][i] - min(record["due"][i], record["sent"][i]) for i in measured]),
        "statuses": statuses,
        "client_cpu_seconds": record["client_cpu_seconds"],
        "measured": measured,
    }


def sent_rate(summary: dict) -> float:
    """The rate the client achieved: after the warm-up, or over the whole run when nothing after it went out."""
    return summary["achieved_rate"] or summary["achieved_rate_whole_run"] or 0.0


def _rate(times: list[float]) -> float | None:
    """Events per second over the span of ``times``."""
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return (len(times) - 1) / span if span else None


def client_capacity(rates: list[float], seconds: float, log_dir: Path) -> list[dict]:
    """The client against the bare endpoint: whether this machine can offer each rate at all."""
    port = free_port()
    env = {**os.environ, "ESPSTREAM_GATEWAY_HOST": HOST, "ESPSTREAM_GATEWAY_PORT": str(port)}
    with open(log_dir / "e2e-bare.log", "ab") as log:
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.bare_app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    results = []
    try:
        wait_for_http(f"http://{HOST}:{port}/docs", timeout=30)
        for rate in rates:
            name = f"capacity-{int(rate)}"
            client = offer(f"http://{HOST}:{port}{WEBHOOK_PATH}", rate, WARMUP_SECONDS + seconds, 0, log_dir, name)
            client_cpu = _wait_with_cpu(client)
            if client.returncode != 0:
                raise RuntimeError(f"the load generator failed; see {log_dir / (name + '-client.log')}")
            summary = client_summary(_load_json(log_dir / f"{name}-client.json"), WARMUP_SECONDS)
            summary.pop("measured")
            results.append(summary)
    finally:
        server.terminate()
        server.wait(20)
    return results


def _load_json(path: Path) -> dict:
    with open(path) as file:
        return json.load(file)


def rss_mb(processes: dict[str, int]) -> dict[str, float]:
    """Resident set size of each process (and its children), in MiB."""
    return _per_process(processes, lambda member: member.memory_info().rss / 2**20)


def _per_process(processes: dict[str, int], measure: Callable[[psutil.Process], float]) -> dict[str, float]:
    """``measure`` summed over each process and its children (NaN for one that is gone)."""
    sizes = {}
    for name, pid in processes.items():
        try:
            process = psutil.Process(pid)
            sizes[name] = sum(measure(member) for member in [process, *process.children(recursive=True)])
        except psutil.NoSuchProcess:
            sizes[name] = float("nan")
    return sizes


def _wait_with_cpu(process: subprocess.Popen) -> float:
    """Wait for ``process``; its user + system CPU seconds (read from the kernel as it is reaped)."""
    _pid, _status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(_status)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(processes: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds of each process and its children (the gateway's workers), every thread."""
    return _per_process(processes, lambda member: sum(member.cpu_times()[:2]))


def read_arrivals(path: Path) -> dict[str, float]:
    """message id -> first arrival time."""
    arrivals: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] not in arrivals:
                arrivals[parts[0]] = float(parts[1])
    return arrivals


def wait_for_arrivals(path: Path, wanted: set[str], timeout: float) -> dict[str, float]:
    """Arrivals until every ``wanted`` id is in, nothing new came for STALL_SECONDS, or ``timeout``."""
    deadline = time.monotonic() + timeout
    seen, last_change = -1, time.monotonic()
    while True:
        arrivals = read_arrivals(path)
        got = len(wanted & arrivals.keys())
        if got == len(wanted) or time.monotonic() > deadline:
            return arrivals
        if got != seen:
            seen, last_change = got, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return arrivals
        time.sleep(0.5)


def prime(url: str, arrivals_path: Path, timeout: float = 60.0) -> float:
    """One webhook through the whole pipeline (group joins, schema registration); the seconds it took."""
    started = time.monotonic()
    request = urllib.request.Request(
        url, data=postmark_body(FIRST_NUMBER - 1), method="POST",
        headers={"Content-Type": "application/json", "Authorization": basic_auth_header()},
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway did not accept the priming webhook")
        time.sleep(0.5)
    wait_for_arrivals(arrivals_path, {message_id(FIRST_NUMBER - 1)}, timeout)
    if message_id(FIRST_NUMBER - 1) not in read_arrivals(arrivals_path):
        raise TimeoutError("the priming webhook never reached the receiver")
    return time.monotonic() - started


def measure_rate(rate: float, seconds: float, log_dir: Path, durable: bool = False) -> dict:
    """One fresh stack under ``rate`` webhooks/s for WARMUP_SECONDS + ``seconds``; its broker in memory or durable."""
    name = f"e2e-{int(rate)}{'-durable' if durable else ''}"
    arrivals_path = Path(tempfile.mkstemp(prefix=f"{name}-arrivals-", dir=log_dir)[1])
    with fresh_broker(log_dir, name, durable) as (broker, broker_env), registry(log_dir, name, broker_env) as (reg, env):
        gateway_port = free_port()
        # As `espstream run` starts it: a gateway worker per core.
        gateway_env = {**env, "ESPSTREAM_WEBHOOK_SECRET": f"{USER}:{PASSWORD}", "ESPSTREAM_GATEWAY_WORKERS": str(available_cores()),
                       "ESPSTREAM_GATEWAY_HOST": HOST, "ESPSTREAM_GATEWAY_PORT": str(gateway_port)}
        consumer_env = {**env, "BENCH_ARRIVALS_PATH": str(arrivals_path)}
        with (
            running(Service(["consume", "benchmarks.e2e_receiver", "--group", "bench-e2e"], consumer_env,
                            log_dir / f"{name}-consumer.log")) as consumer,
            running(Service(["normalize"], env, log_dir / f"{name}-normalizer.log")) as normalizer,
            running(Service(["gateway"], gateway_env, log_dir / f"{name}-gateway.log"), gateway_port) as gateway,
        ):
            url = f"http://{HOST}:{gateway_port}{WEBHOOK_PATH}"
            wait_for_http(f"http://{HOST}:{gateway_port}/readyz", timeout=30)
            prime_seconds = prime(url, arrivals_path)
            processes = {
                "gateway": gateway.process.pid, "normalizer": normalizer.process.pid,
                "consumer": consumer.process.pid, "registry": reg.process.pid,
            }
            # The broker, and on durable storage SeaweedFS too (as "storage").
            processes.update(zip(("broker", "storage"), (process.pid for process in broker.processes)))
            memory = {"idle": rss_mb(processes)}
            client = offer(url, rate, WARMUP_SECONDS + seconds, FIRST_NUMBER, log_dir, name)
            processes["load generator"] = client.pid
            cpu_started = cpu_seconds(processes)
            time.sleep(WARMUP_SECONDS + 0.1)
            memory["after_warmup"] = rss_mb({k: v for k, v in processes.items() if k != "load generator"})
            client_cpu = _wait_with_cpu(client)
            if client.returncode != 0:
                raise RuntimeError(f"the load generator failed; see {log_dir / (name + '-client.log')}")
            record = _load_json(log_dir / f"{name}-client.json")
            summary = client_summary(record, WARMUP_SECONDS)
            measured = summary.pop("measured")
            accepted = {message_id(FIRST_NUMBER + i): i for i in measured if record["status"][i] == 200}
            arrivals = wait_for_arrivals(arrivals_path, set(accepted), DRAIN_TIMEOUT_SECONDS)
            del processes["load generator"]
            memory["end"] = rss_mb(processes)
            cpu_ended = {**cpu_seconds(processes), "load generator": client_cpu}
    # Every webhook of the run (warm-up too) was handled by each process between the two readings.
    handled = sum(1 for status in record["status"] if status == 200) or 1
    cpu_us = {name: (cpu_ended[name] - cpu_started[name]) / handled * 1e6 for name in cpu_ended}
    latencies = [
        arrivals[mid] - min(record["due"][i], record["sent"][i]) for mid, i in accepted.items() if mid in arrivals
    ]
    return {
        **summary,
        "prime_seconds": prime_seconds,
        "accepted": len(accepted),
        "arrived": len(latencies),
        "missing": len(accepted) - len(latencies),
        "latency": percentiles(latencies),
        "memory_mb": memory,
        "cpu_us_per_webhook": cpu_us,
        "durable": durable,
    }


def run(rates: list[float], seconds: float, log_dir: Path, progress=print, rounds: int = 1) -> dict:
    """Each rate on a fresh stack, ``rounds`` times over (round 1 every rate, then round 2, ...)."""
    capacity = client_capacity(rates, seconds, log_dir)
    for c in capacity:
        progress(f"  e2e: client vs bare endpoint at {c['offered_rate']:,.0f}/s offered: {sent_rate(c):,.0f}/s sent, "
                 f"late p99 {c['client_late'].get('p99_ms', 0):.1f} ms")
    stacks = []
    for number in range(1, rounds + 1):
        for rate in rates:
            started = time.monotonic()
            round_dir = log_dir / f"round-{number}"
            round_dir.mkdir(exist_ok=True)
            result = {**measure_rate(rate, seconds, round_dir), "round": number}
            # The anchor, in the same round: two bare librdkafka hops through a fresh broker at the same rate.
            result["hops"] = measure_hops(rate, seconds, WARMUP_SECONDS, round_dir, f"hops-{int(rate)}")
            stacks.append(result)
            lat = result["latency"]
            progress(f"  e2e round {number}/{rounds} at {rate:,.0f}/s: two bare librdkafka hops p50 "
                     f"{result['hops']['p50_ms']:.1f} ms p99 {result['hops']['p99_ms']:.1f} ms")
            progress(f"  e2e round {number}/{rounds} at {rate:,.0f}/s: sent {sent_rate(result):,.0f}/s, "
                     f"{result['arrived']:,}/{result['accepted']:,} arrived, p50 {lat.get('p50_ms', float('nan')):.1f} ms "
                     f"p99 {lat.get('p99_ms', float('nan')):.1f} ms max {lat.get('max_ms', float('nan')):.1f} ms "
                     f"({time.monotonic() - started:.0f} s)")
    return {"warmup_seconds": WARMUP_SECONDS, "seconds": seconds, "rounds": rounds, "cores": available_cores(),
            "gateway_workers": available_cores(), "client_capacity": capacity, "stacks": stacks}
