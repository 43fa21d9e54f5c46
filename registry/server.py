"""Running the registry: ``serve`` in the foreground (the CLI), ``RegistryServer`` in a thread (tests)."""

import threading
import time
from typing import Any

import uvicorn

from .app import create_app


def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    kafka_config: dict[str, Any] | None = None,
    topic: str = "_schemas",
    **app_options: Any,
) -> None:
    """Serve until interrupted. Exits with status 3 if the state cannot be loaded (Kafka unreachable)."""
    app = create_app(kafka_config or {"bootstrap.servers": "127.0.0.1:9092"}, topic, **app_options)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, timeout_keep_alive=5, log_config=None)


class RegistryServer:
    """The registry on ``host``, a free port, in a background thread. A context manager.

    ``url`` is known once ``start()`` returned, i.e. once the state is loaded and the socket listens.
    """

    def __init__(
        self, kafka_config: dict[str, Any], topic: str = "_schemas", host: str = "127.0.0.1", **app_options: Any
    ):
        self._app = create_app(kafka_config, topic, **app_options)
        config = uvicorn.Config(self._app, host=host, port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"registry-{topic}", daemon=True)
        self.url = ""

    def start(self, timeout: float = 30.0) -> "RegistryServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                error = getattr(self._app.state, "startup_error", None)
                raise RuntimeError(f"the schema registry failed to start: {error!r}") from error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the schema registry did not start within {timeout}s")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit:
            pass  # uvicorn's answer to a failed startup; start() reports it

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "RegistryServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
