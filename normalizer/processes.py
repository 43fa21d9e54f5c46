"""``espstream normalize --processes N``: N members of the normalizer's group on one host.

A normalizer process runs its Python on one core (librdkafka's threads aside), so one
host's cores are used by more members of the same consumer group: Kafka spreads the raw
topic's partitions over them, each commits its own, and a member that dies has its
partitions taken over by the others after the session timeout. This parent only starts
them, forwards SIGTERM/SIGINT, and stops them all when one exits on its own (a process
supervisor then sees the failure and restarts the whole set).

Each member serves its metrics on ESPSTREAM_NORMALIZER_METRICS_PORT + its number
(0, 1, ...): one Prometheus target per member, as for members on separate hosts.
"""

import logging
import os
import signal
import subprocess
import sys
import time

log = logging.getLogger("espstream.normalizer")

STOP_SECONDS = 30.0


def member_env(env: dict[str, str], number: int) -> dict[str, str]:
    """The settings of member ``number``: its own metrics port when metrics are served."""
    port = int(env.get("ESPSTREAM_NORMALIZER_METRICS_PORT") or 0)
    if not port:
        return env
    return {**env, "ESPSTREAM_NORMALIZER_METRICS_PORT": str(port + number)}


def run(processes: int) -> int:
    """Run ``processes`` normalizer members until SIGTERM/SIGINT or until one exits; the exit code."""
    stopping = False

    def request_stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    members = [
        subprocess.Popen([sys.executable, "-m", "espstream", "normalize"], env=member_env(dict(os.environ), number))
        for number in range(processes)
    ]
    log.info("normalizer: %d members, pids %s", processes, " ".join(str(member.pid) for member in members))
    try:
        while not stopping:
            for member in members:
                if member.poll() is not None:
                    log.error("normalizer member %d exited with %d; stopping the others", member.pid, member.returncode)
                    return member.returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        for member in members:
            if member.poll() is None:
                member.send_signal(signal.SIGTERM)  # each finishes and commits its batch, then leaves the group
        deadline = time.monotonic() + STOP_SECONDS
        for member in members:
            try:
                member.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                member.kill()
                member.wait()
