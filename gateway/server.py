"""Run the gateway with uvicorn, limited so that a slow or huge client cannot hold the server.

uvicorn's httptools protocol neither bounds a request's header block nor
times it out, so a client could send headers forever, slowly or without end.
``limited_protocol`` adds both: over ``max_header_count`` headers or
``max_header_bytes`` of request line and headers the answer is 431, and a
connection whose request head is not complete ``header_timeout_seconds``
after the connection opened, or after the previous response on a kept-alive
connection, is closed. The body has its own deadline in the app (408).

uvicorn has no option for any of this with httptools; its h11 protocol bounds
the head's size only (``h11_max_incomplete_event_size``, answered 400), with
no count or deadline, and parses in pure Python. The subclass uses only
uvicorn's parser callbacks and ``pipeline``; tests/integration/test_gateway_security.py
exercises each limit over real sockets, so an uvicorn upgrade that changes
them fails there.
"""

import asyncio
from typing import Any

import uvicorn
from pydantic import ValidationError
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .app import ConfigurationError, create_app
from .settings import GatewaySettings

TOO_LARGE = b"request headers too large"


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded, timed request head. Limits are class attributes."""

    max_header_count = 100
    max_header_bytes = 32 * 1024
    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head_bytes = 0  # request line and headers, as parsed
        self._head_count = 0
        self._head_received = 0  # bytes received while the head is incomplete
        self._in_head = False
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and not self._refused:
            # httptools keeps a header's pieces until the header ends: bound what it is holding.
            self._head_received += len(data)
            if self._head_received > self.max_header_bytes:
                self._refuse()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A kept-alive connection's next request head is on the clock from now: any byte received
        # cancels uvicorn's keep-alive timeout, and bytes that begin no request (blank lines, which
        # the parser skips) would otherwise hold the connection open forever.
        if not self.transport.is_closing() and not self.pipeline and not self._in_head:
            self._start_head_timer()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal already answered 431 and closed
            super().send_400_response(msg)

    # Parser callbacks

    def on_message_begin(self) -> None:
        # The first byte of a request: the first one's clock started with the connection.
        self._head_bytes = 0
        self._head_count = 0
        self._head_received = 0
        self._in_head = True
        if self._head_timer is None:
            self._start_head_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value), 1)  # httptools calls this once per whole header
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def _count(self, size: int, headers: int) -> None:
        self._head_bytes += size
        self._head_count += headers
        if self._head_bytes > self.max_header_bytes or self._head_count > self.max_header_count:
            self._refuse()
            # Stops the parser; uvicorn logs an invalid request, and its 400 answer is skipped.
            raise HeadersRefused

    def _refuse(self) -> None:
        self._refused = True
        self._cancel_head_timer()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(TOO_LARGE)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + TOO_LARGE
        )
        self.transport.close()

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class HeadersRefused(Exception):
    pass


def limited_protocol(settings: GatewaySettings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class with the settings' limits (uvicorn instantiates the class itself)."""
    return type(
        "GatewayHttpProtocol",
        (LimitedHttpToolsProtocol,),
        {
            "max_header_count": settings.max_header_count,
            "max_header_bytes": settings.max_header_bytes,
            "header_timeout": settings.header_timeout_seconds,
        },
    )


def load_settings() -> GatewaySettings:
    """The settings from the environment; ConfigurationError when they are refused."""
    try:
        return GatewaySettings()
    except (ValidationError, ValueError, OSError) as error:  # OSError: an unreadable _FILE
        raise ConfigurationError(str(error)) from None


def uvicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    """uvicorn's options for the gateway, one process or several (and for benchmarks.bare_app, its anchor)."""
    return {
        "host": settings.gateway_host,
        "port": settings.gateway_port,
        "http": limited_protocol(settings),
        "access_log": False,  # the app logs one line per webhook itself (espstream.gateway.access)
        "log_level": "info",
        "log_config": None,  # uvicorn's loggers go through espstream.plumbing.logs like every other
        # An idle kept-alive connection is closed after this.
        "timeout_keep_alive": 5,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


def serve(settings: GatewaySettings | None = None, workers: int | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then the exit status. ConfigurationError before anything listens.

    ``workers`` (default ESPSTREAM_GATEWAY_WORKERS) over 1: that many processes on the one port, see
    gateway.workers; 1: this process alone.
    """
    settings = settings or load_settings()
    workers = workers or settings.gateway_workers
    if workers > 1:
        from .workers import serve_workers

        return serve_workers(settings, workers)
    uvicorn.run(create_app(settings), **uvicorn_options(settings))  # exits 3 itself when startup fails
    return 0
