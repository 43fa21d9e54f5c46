"""``espstream gateway --workers N``: N uvicorn processes serving one port.

The parent checks the settings once (logging how each ESP is protected), serves
the metrics port, binds the webhook port, then starts N worker processes with
multiprocessing's *spawn* method: each is a fresh interpreter, so it inherits no
librdkafka client and no thread; it builds its own app and Kafka producer and
runs uvicorn on a socket of its own bound to the port with SO_REUSEPORT, and the
kernel spreads new connections evenly over the workers' sockets. (One socket
shared by all was uneven: the worker that woke first accepted a whole burst of
connections.) The parent's own socket only holds the port (a port in use stops
the gateway before any worker starts) and is never listened on: the port
refuses connections until a worker listens, after its app started, as with one
process. The parent logs ``gateway ready`` once every worker has started.

Metrics: prometheus-client's multiprocess mode. The parent creates a fresh
PROMETHEUS_MULTIPROC_DIR before the workers start (they inherit it and keep their
values there), serves the metrics port itself with a MultiProcessCollector that
sums over the workers, and removes the directory at exit. The gateway's metrics
have the same names and values as with one process; the process_* and python_*
series of one process are not served (they are per process).

Signals: SIGTERM or SIGINT to the parent stops every worker with SIGTERM (each
finishes its requests and flushes its producer, as one process does), then the
parent exits 0. Workers run in a process group of their own, so a terminal's
Ctrl-C reaches the parent only and each worker is told once. A worker that exits
on its own (a crash, the OOM killer) is not restarted: the parent stops the
others and exits 1, so that whatever runs the gateway (systemd, Kubernetes,
``espstream run``) sees the failure and restarts it whole. A worker whose parent
is gone (SIGKILL) stops itself.
"""

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import NamedTuple

import uvicorn
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from espstream.plumbing.metrics import serve

from .app import ConfigurationError, check_protection, create_app
from .settings import GatewaySettings

log = logging.getLogger("espstream.gateway")

# How long a worker may take to stop (finish its requests, flush its producer) before it is killed.
STOP_TIMEOUT_SECONDS = 30.0
# How often a worker checks that its parent is still there.
PARENT_CHECK_SECONDS = 1.0
# A stopped worker's exit status: uvicorn re-raises the SIGTERM it handled once it has shut down.
CLEAN_EXIT = (0, -signal.SIGTERM)


class Worker(NamedTuple):
    process: BaseProcess
    ready: Connection  # the worker sends its pid once its server has started


def serve_workers(settings: GatewaySettings, count: int) -> int:
    """Run ``count`` worker processes until SIGTERM or SIGINT; the exit status (1: a worker failed)."""
    check_protection(settings)  # ConfigurationError before anything listens
    metrics_dir = tempfile.mkdtemp(prefix="espstream-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before any worker starts: they inherit it
    metrics_server = None
    listener = None
    try:
        if settings.gateway_metrics_port:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=metrics_dir)
            try:
                metrics_server = serve(settings.metrics_host, settings.gateway_metrics_port, "ESPSTREAM_GATEWAY_METRICS_PORT", log, registry)
            except OSError as error:
                raise ConfigurationError(str(error)) from None
        try:
            listener = bind(settings.gateway_host, settings.gateway_port)  # holds the port, never listened on
        except OSError as error:
            raise ConfigurationError(
                f"ESPSTREAM_GATEWAY_PORT={settings.gateway_port} on {settings.gateway_host}: {error.strerror or error}"
            ) from None
        return _supervise(settings, count)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
        if listener is not None:
            listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT, not yet listening (asyncio listens when uvicorn
    serves it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _supervise(settings: GatewaySettings, count: int) -> int:
    stop_signal: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop_signal.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    context = multiprocessing.get_context("spawn")
    # The metrics port is the parent's; a worker only records.
    worker_settings = settings.model_copy(update={"gateway_metrics_port": 0})
    workers: list[Worker] = []
    status = 1
    try:
        for index in range(count):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=run_worker, args=(worker_settings, send, os.getpid()),
                name=f"espstream-gateway-worker-{index + 1}", daemon=True,
            )
            process.start()
            send.close()
            workers.append(Worker(process, receive))
        status = _watch(settings, workers, stop_signal)
    finally:
        if not _stop(workers):
            status = 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _watch(settings: GatewaySettings, workers: list[Worker], stop_signal: list[int]) -> int:
    """Until a stop signal (0) or a worker's exit (1)."""
    starting = {worker.ready: worker for worker in workers}
    exits = {worker.process.sentinel: worker for worker in workers}
    while not stop_signal:
        for handle in wait([*starting, *exits], timeout=0.5):
            if handle in starting:
                worker = starting.pop(handle)  # type: ignore[call-overload]
                try:
                    worker.ready.recv()
                except EOFError:  # it exited before its server started: its sentinel says so
                    continue
                if not starting:
                    pids = [w.process.pid for w in workers]
                    log.info(
                        "gateway ready: %d worker processes (pids %s) on http://%s:%d",
                        len(workers), ", ".join(map(str, pids)), settings.gateway_host, settings.gateway_port,
                        extra={"pids": pids},
                    )
            else:
                worker = exits[handle]
                worker.process.join()  # it has exited: this only collects its status
                log.error(
                    "gateway worker %d exited with status %s%s; stopping the gateway",
                    worker.process.pid, worker.process.exitcode, " while starting" if starting else "",
                )
                return 1
    log.info("gateway: %s, stopping %d worker processes", signal.Signals(stop_signal[0]).name, len(workers))
    return 0


def _stop(workers: list[Worker]) -> bool:
    """SIGTERM to every worker, wait for each (killed after STOP_TIMEOUT_SECONDS); whether all stopped cleanly."""
    for worker in workers:
        if worker.process.exitcode is None:
            worker.process.terminate()  # SIGTERM: uvicorn's graceful shutdown
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    clean = True
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.exitcode is None:
            log.error("gateway worker %d did not stop within %.0f s; killing it", worker.process.pid, STOP_TIMEOUT_SECONDS)
            worker.process.kill()
            worker.process.join()
        clean = clean and worker.process.exitcode in CLEAN_EXIT
        mark_process_dead(worker.process.pid)  # its in-flight gauge no longer counts
        worker.ready.close()
    return clean


# In each worker process


class WorkerServer(uvicorn.Server):
    """uvicorn's server, telling the parent once it serves (its app started, the socket listened on)."""

    def __init__(self, config: uvicorn.Config, ready: Connection):
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.send(os.getpid())
            self._ready.close()


def run_worker(settings: GatewaySettings, ready: Connection, parent_pid: int) -> None:
    """A worker process: its own app and Kafka producer, uvicorn on its own socket of the shared port."""
    from espstream.plumbing.logs import configure

    from .server import uvicorn_options

    os.setpgid(0, 0)  # out of the terminal's foreground group: a Ctrl-C reaches the parent, which stops us
    configure()
    _stop_without(parent_pid)
    app = create_app(settings, announce=False)  # the parent checked and announced the settings
    listener = bind(settings.gateway_host, settings.gateway_port)
    WorkerServer(uvicorn.Config(app, **uvicorn_options(settings)), ready).run(sockets=[listener])


def _stop_without(parent_pid: int) -> None:
    """SIGTERM to this process (uvicorn's graceful shutdown) once the parent is gone."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        log.warning("gateway worker %d: the parent process %d is gone, stopping", os.getpid(), parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
