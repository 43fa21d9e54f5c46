"""Processes a measurement needs: a fresh embedded broker, espstream services, all on 127.0.0.1."""

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.config import CommonSettings
from espstream.plumbing.topics import ensure_topics
from tests.support.services import Service

__all__ = ["Service", "fresh_broker", "registry", "running", "wait_for_http", "run_json_worker"]

HOST = "127.0.0.1"


@contextmanager
def fresh_broker(log_dir: Path, name: str, durable: bool = False) -> Iterator[tuple[EmbeddedBroker, dict[str, str]]]:
    """A new, empty Tansu broker with the pipeline's topics, and the ESPSTREAM_* settings for it.

    In memory unless ``durable`` (then on SeaweedFS in the log directory, as
    `espstream run` starts it). Tansu in memory slows down past ~900k records,
    so every measurement gets its own.
    """
    data_dir = log_dir / f"{name}-data" if durable else None
    broker = EmbeddedBroker(free_port(), host=HOST, log_path=log_dir / f"{name}-broker.log", data_dir=data_dir).start()
    try:
        env = broker.client_env()  # as `espstream run` sets it: on durable storage, producers not idempotent
        ensure_topics(CommonSettings(kafka_bootstrap_servers=broker.bootstrap_servers))
        yield broker, env
    finally:
        broker.stop()


@contextmanager
def running(service: Service, port: int | None = None) -> Iterator[Service]:
    """``service`` started (and listening on ``port``), stopped on the way out whatever happens."""
    try:
        service.start(port)
        yield service
    finally:
        service.stop()


@contextmanager
def registry(log_dir: Path, name: str, broker_env: dict[str, str]) -> Iterator[tuple[Service, dict[str, str]]]:
    """`espstream registry` on the broker of ``broker_env``, and the settings pointing at it."""
    port = free_port()
    settings = {**broker_env, "ESPSTREAM_REGISTRY_HOST": HOST, "ESPSTREAM_REGISTRY_PORT": str(port)}
    with running(Service(["registry"], settings, log_dir / f"{name}-registry.log"), port) as service:
        yield service, {**broker_env, "ESPSTREAM_SCHEMA_REGISTRY_URL": f"http://{HOST}:{port}"}


def wait_for_http(url: str, timeout: float) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.2)


def run_json_worker(module: str, args: list[str], env: dict[str, str], log_path: Path, timeout: float) -> str:
    """``python -m module args``; its stdout (a JSON line). Killed after ``timeout`` seconds."""
    with open(log_path, "ab") as log:
        done = subprocess.run(
            [sys.executable, "-m", module, *args], env=env, stdout=subprocess.PIPE, stderr=log, timeout=timeout
        )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} exited {done.returncode}; see {log_path}")
    return done.stdout.decode()
