"""The gateway vs a bare FastAPI endpoint and vs django-anymail's own view, under the same wrk load.

One gateway process against the bare endpoint in one process (the gateway's own cost per request), and
the gateway with a worker process per core against anymail under its best gunicorn set-up (the
whole machine against the whole machine)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from espstream.embedded import free_port, wait_for_port
from espstream.plumbing.config import CommonSettings

from .payloads import PASSWORD, USER, USER_AGENT, WEBHOOK_PATH, basic_auth_header, gateway_request_body
from .stack import HOST, Service, fresh_broker, running, wait_for_http
from .topic_count import read_count

CONNECTIONS = 64
THREADS = 1  # two cores: leave the other one to the server (and the broker)
WARMUP_SECONDS = 5
DURATION_SECONDS = 15

# wrk calls done() once at the end; it prints one JSON line the harness picks up.
LUA_TEMPLATE = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{authorization}"
wrk.headers["User-Agent"] = "{user_agent}"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "latency_p50_us": %d, "latency_p90_us": %d, ' ..
    '"latency_p99_us": %d, "latency_max_us": %d, "latency_mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_binary() -> str:
    """wrk's path; installs the Debian package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("benchmarks: wrk is not installed; install it (Debian/Ubuntu: sudo apt-get install -y wrk) and rerun")
    print("benchmarks: installing wrk (apt-get install -y wrk)", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, timeout=300, check=False)
        subprocess.run(install, stdout=subprocess.DEVNULL, timeout=300, check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("benchmarks: wrk is still missing after apt-get install wrk")
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).splitlines()[0].strip()


# Appended for the load runs: every response's status counted (a Lua call per response,
# which costs wrk some speed, so the ratio runs go without it).
LUA_STATUS_COUNTS = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
local summarize = done
done = function(summary, latency, requests)
  summarize(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, string.format('"%d": %d', status, count)) end
  io.write("WRK_STATUSES {" .. table.concat(parts, ", ") .. "}\\n")
end
"""


def write_lua(path: Path, count_statuses: bool = False) -> Path:
    body = gateway_request_body().decode()
    assert "]==]" not in body
    script = LUA_TEMPLATE.format(body=body, authorization=basic_auth_header(), user_agent=USER_AGENT)
    path.write_text(script + (LUA_STATUS_COUNTS if count_statuses else ""))
    return path


def wrk_command(wrk: str, lua: Path, url: str, seconds: int) -> list[str]:
    return [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(lua), url]


def run_wrk(wrk: str, lua: Path, url: str, seconds: int, log_path: Path) -> dict:
    command = wrk_command(wrk, lua, url, seconds)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(command, done.returncode, done.stdout, done.stderr, log_path)


def parse_wrk(command: list[str], returncode: int, stdout: str, stderr: str, log_path: Path) -> dict:
    """wrk's result line (and status counts, when the script counted them)."""
    with open(log_path, "a") as log:  # wrk's own report, for a human
        log.write(f"$ {' '.join(command)}\n{stdout}{stderr}\n")
    if returncode != 0:
        raise RuntimeError(f"wrk exited {returncode}; see {log_path}")
    line = next(line for line in stdout.splitlines() if line.startswith("WRK_RESULT "))
    result = json.loads(line.removeprefix("WRK_RESULT "))
    statuses = [line for line in stdout.splitlines() if line.startswith("WRK_STATUSES ")]
    if statuses:
        result["statuses"] = json.loads(statuses[0].removeprefix("WRK_STATUSES "))
    result["requests_per_second"] = result["requests"] / (result["duration_us"] / 1e6)
    result["non_2xx"] = result["status_errors"]  # wrk counts every status >= 400; neither app answers 3xx
    result["socket_errors"] = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return result


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children (gunicorn's workers), every thread."""
    process = psutil.Process(pid)
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def load(wrk: str, lua: Path, url: str, server_pid: int, log_path: Path, broker_pid: int | None = None) -> dict:
    """A warm-up, then the measured run; with the server's (and the broker's) CPU time per request over the latter."""
    warmup = run_wrk(wrk, lua, url, WARMUP_SECONDS, log_path)
    pids = {"server": server_pid, **({"broker": broker_pid} if broker_pid is not None else {})}
    cpu_before = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    result = run_wrk(wrk, lua, url, DURATION_SECONDS, log_path)
    for name, pid in pids.items():
        result[f"{name}_cpu_us_per_request"] = (process_cpu_seconds(pid) - cpu_before[name]) / max(result["requests"], 1) * 1e6
    result["warmup_requests"] = warmup["requests"]
    result["warmup_non_2xx"] = warmup["non_2xx"]
    return result


def measure_bare(wrk: str, log_dir: Path, acked: bool = False) -> dict:
    """The bare endpoint in one process; ``acked``: answering after a fresh broker's ack of each body."""
    if not acked:
        return _measure_bare(wrk, log_dir, {}, [])
    with fresh_broker(log_dir, "bare-acked") as (broker, broker_env):
        result = _measure_bare(wrk, log_dir, broker_env, ["--acked"], broker.processes[0].pid)
        result["answered_200"] = (
            result["requests"] - result["non_2xx"] + result["warmup_requests"] - result["warmup_non_2xx"]
        )
        result["raw_records"] = read_count(
            broker.bootstrap_servers, CommonSettings().raw_topic, result["answered_200"] + CONNECTIONS, idle_seconds=2.0
        )
    return result


def _measure_bare(wrk: str, log_dir: Path, env: dict[str, str], args: list[str], broker_pid: int | None = None) -> dict:
    port = free_port()
    env = {**env, "ESPSTREAM_GATEWAY_HOST": HOST, "ESPSTREAM_GATEWAY_PORT": str(port)}
    with open(log_dir / "bare.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bare_app", *args], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(HOST, port, timeout=30)
        url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
        return load(wrk, write_lua(log_dir / "post.lua"), url, server.pid, log_dir / "wrk.log", broker_pid)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# gunicorn for the Django anchor: 2 gthread workers (one per core) of 4 threads each. The view
# is CPU-bound, so more processes than cores only add context switches; threads matter for
# keep-alive, which sync workers do not do (they close every connection, and wrk reconnects),
# while wrk keeps its connections to the gateway alive. Tried on this machine with the same
# wrk load (5 s runs): sync x2 1,272-1,489 req/s, sync x4 1,095, gthread 1x8 1,884,
# gthread 2x4 1,939. The best of these is the anchor; both servers see the same two cores.
ANYMAIL_WORKERS = 2
ANYMAIL_WORKER_CLASS = "gthread"
ANYMAIL_THREADS = 4


def gunicorn_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{HOST}:{port}",
        "--workers", str(ANYMAIL_WORKERS),
        "--worker-class", ANYMAIL_WORKER_CLASS,
        "--threads", str(ANYMAIL_THREADS),
        "--log-level", "warning",  # no access log, as for the gateway
        "benchmarks.anymail_site.wsgi:application",
    ]


def measure_anymail(wrk: str, log_dir: Path) -> dict:
    """django-anymail's PostmarkTrackingWebhookView under gunicorn, the same wrk load and body."""
    port = free_port()
    with open(log_dir / "anymail.log", "ab") as log:
        server = subprocess.Popen(gunicorn_command(port), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(HOST, port, timeout=30)
        url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
        return load(wrk, write_lua(log_dir / "post.lua"), url, server.pid, log_dir / "wrk.log")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure_gateway(wrk: str, log_dir: Path, workers: int = 1, durable: bool = False) -> dict:
    """`espstream gateway --workers N` (its CPU time summed over the worker processes), on a memory or durable broker."""
    with fresh_broker(log_dir, f"gateway-{workers}{'-durable' if durable else ''}", durable) as (broker, broker_env):
        port = free_port()
        env = {
            **broker_env,
            "ESPSTREAM_WEBHOOK_SECRET": f"{USER}:{PASSWORD}",
            "ESPSTREAM_GATEWAY_HOST": HOST,
            "ESPSTREAM_GATEWAY_PORT": str(port),
        }
        service = Service(["gateway", "--workers", str(workers)], env, log_dir / f"gateway-{workers}.log")
        with running(service, port) as gateway:
            wait_for_http(f"http://{HOST}:{port}/readyz", timeout=30)
            url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
            result = load(wrk, write_lua(log_dir / "post.lua"), url, gateway.process.pid, log_dir / "wrk.log",
                          broker.processes[0].pid)
        # Every 200 (warm-up included) must be a record on the raw topic; a request wrk
        # cut off at its end may add one it never saw answered.
        result["answered_200"] = (
            result["requests"] - result["non_2xx"] + result["warmup_requests"] - result["warmup_non_2xx"]
        )
        raw_topic = CommonSettings().raw_topic
        result["raw_records"] = read_count(
            broker.bootstrap_servers, raw_topic, result["answered_200"] + CONNECTIONS, idle_seconds=2.0
        )
    result["workers"] = workers
    result["durable"] = durable
    return result


__all__ = ["measure_anymail", "measure_bare", "measure_gateway", "wrk_binary", "wrk_version"]
