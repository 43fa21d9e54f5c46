"""The image's HEALTHCHECK command, run as Docker would, against a real gateway: healthy, then not."""

import json
import os
import subprocess
import sys
from pathlib import Path

from espstream.embedded import EmbeddedBroker, free_port
from espstream.plumbing.topics import ensure_topics
from tests.conftest import settings_from_env
from tests.support.services import Service, own_topics

ROOT = Path(__file__).resolve().parents[2]


def healthcheck(url: str) -> int:
    """The Dockerfile's HEALTHCHECK CMD (exec form), with ESPSTREAM_HEALTHCHECK_URL as a service sets it."""
    line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.strip().startswith("CMD ["))
    command = json.loads(line.strip().removeprefix("CMD "))
    assert command[0] == "python"
    done = subprocess.run([sys.executable, *command[1:]], env={**os.environ, "ESPSTREAM_HEALTHCHECK_URL": url}, capture_output=True, timeout=30)
    return done.returncode


def test_the_image_healthcheck_follows_the_gateways_readiness(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = {**own_topics(broker.bootstrap_servers), "ESPSTREAM_ALLOW_UNAUTHENTICATED": "1",
           "ESPSTREAM_GATEWAY_HOST": "127.0.0.1", "ESPSTREAM_GATEWAY_PORT": str(free_port())}  # fmt: skip
    url = f"http://127.0.0.1:{env['ESPSTREAM_GATEWAY_PORT']}/readyz"
    ensure_topics(settings_from_env(env))
    gateway = Service(["gateway"], env, tmp_path / "gateway.log").start(int(env["ESPSTREAM_GATEWAY_PORT"]))
    try:
        assert healthcheck(url) == 0
        no_broker = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "ESPSTREAM_GATEWAY_PORT": str(free_port())}
        unready = Service(["gateway"], {**env, **no_broker}, tmp_path / "unready.log")
        port = int(unready.env["ESPSTREAM_GATEWAY_PORT"])
        unready.start(port)
        try:
            assert healthcheck(f"http://127.0.0.1:{port}/readyz") != 0  # 503: its broker does not answer
        finally:
            unready.stop()
    finally:
        gateway.stop()
    assert healthcheck(url) != 0  # nothing listens
