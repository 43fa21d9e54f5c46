"""Gateway vs a bare FastAPI endpoint under the same wrk load."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from espstream.config import CommonSettings
from espstream.embedded import free_port, wait_for_port

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


def write_lua(path: Path) -> Path:
    body = gateway_request_body().decode()
    assert "]==]" not in body
    path.write_text(LUA_TEMPLATE.format(body=body, authorization=basic_auth_header(), user_agent=USER_AGENT))
    return path


def run_wrk(wrk: str, lua: Path, url: str, seconds: int, log_path: Path) -> dict:
    command = [wrk, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(lua), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    with open(log_path, "a") as log:  # wrk's own report, for a human
        log.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}; see {log_path}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT "))
    result = json.loads(line.removeprefix("WRK_RESULT "))
    result["requests_per_second"] = result["requests"] / (result["duration_us"] / 1e6)
    result["non_2xx"] = result["status_errors"]  # wrk counts every status >= 400; neither app answers 3xx
    result["socket_errors"] = sum(result[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return result


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, every thread (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(wrk: str, lua: Path, url: str, server_pid: int, log_path: Path) -> dict:
    """A warm-up, then the measured run; with the server's CPU time per request over the latter."""
    warmup = run_wrk(wrk, lua, url, WARMUP_SECONDS, log_path)
    cpu_before = process_cpu_seconds(server_pid)
    result = run_wrk(wrk, lua, url, DURATION_SECONDS, log_path)
    result["server_cpu_us_per_request"] = (process_cpu_seconds(server_pid) - cpu_before) / max(result["requests"], 1) * 1e6
    result["warmup_requests"] = warmup["requests"]
    result["warmup_non_2xx"] = warmup["non_2xx"]
    return result


def measure_bare(wrk: str, log_dir: Path) -> dict:
    port = free_port()
    env = {"ESPSTREAM_GATEWAY_HOST": HOST, "ESPSTREAM_GATEWAY_PORT": str(port)}
    with open(log_dir / "bare.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bare_app"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
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


def measure_gateway(wrk: str, log_dir: Path) -> dict:
    with fresh_broker(log_dir, "gateway") as (broker, broker_env):
        port = free_port()
        env = {
            **broker_env,
            "ESPSTREAM_WEBHOOK_SECRET": f"{USER}:{PASSWORD}",
            "ESPSTREAM_GATEWAY_HOST": HOST,
            "ESPSTREAM_GATEWAY_PORT": str(port),
        }
        with running(Service(["gateway"], env, log_dir / "gateway.log"), port) as gateway:
            wait_for_http(f"http://{HOST}:{port}/readyz", timeout=30)
            url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
            result = load(wrk, write_lua(log_dir / "post.lua"), url, gateway.process.pid, log_dir / "wrk.log")
        # Every 200 (warm-up included) must be a record on the raw topic; a request wrk
        # cut off at its end may add one it never saw answered.
        result["answered_200"] = (
            result["requests"] - result["non_2xx"] + result["warmup_requests"] - result["warmup_non_2xx"]
        )
        raw_topic = CommonSettings().raw_topic
        result["raw_records"] = read_count(
            broker.bootstrap_servers, raw_topic, result["answered_200"] + CONNECTIONS, idle_seconds=2.0
        )
    return result


__all__ = ["measure_bare", "measure_gateway", "wrk_binary", "wrk_version"]
