"""Calling a signal's receivers for one event: retries with backoff, async receivers, the dedupe window."""

import asyncio
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

from espstream.schemas import TrackingEvent

from .settings import ConsumerSettings
from .signals import Connection, Signal

log = logging.getLogger("espstream.consumers")

Failure = tuple[Connection, Exception]


class AsyncLoop:
    """One event loop, in its own thread, for every ``async def`` receiver of the process.

    One loop rather than one per lane or ``asyncio.run`` per call: what a receiver
    module keeps for its coroutines (a connection pool, an HTTP client) is bound to
    the loop that created it and stays usable from every lane. Lanes still overlap:
    each waits on its own coroutine while the loop interleaves them.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable`` on the loop; its result or its exception, in the calling thread."""
        return asyncio.run_coroutine_threadsafe(_await(awaitable), self._started()).result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=_serve, args=(self._loop,), name="async-receivers", daemon=True)
                self._thread.start()
            return self._loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class Dispatcher:
    """Calls the wanted receivers of an event, retrying only those that raise."""

    def __init__(self, signal: Signal, settings: ConsumerSettings, sender: object, loop: AsyncLoop):
        self.signal = signal
        self.settings = settings
        self.sender = sender
        self.loop = loop

    def deliver(
        self, event: TrackingEvent, kwargs: dict[str, Any], connections: list[Connection] | None = None
    ) -> list[Failure]:
        """Call ``connections`` (default: every wanted receiver); what still failed after the last attempt.

        A receiver that returned is not called again because a sibling raised.
        """
        pending = [c for c in self.signal.connections if c.wants(event)] if connections is None else connections
        failures = self._call(pending, event, kwargs, 1)
        if not failures:
            return failures
        backoff = self.settings.consumer_retry_backoff_seconds
        for attempt in range(2, self.settings.consumer_max_attempts + 1):
            time.sleep(backoff)
            backoff = min(backoff * 2, self.settings.consumer_retry_backoff_max_seconds)
            failures = self._call([connection for connection, _ in failures], event, kwargs, attempt)
            if not failures:
                return failures
        return failures

    def _call(
        self, connections: list[Connection], event: TrackingEvent, kwargs: dict[str, Any], attempt: int
    ) -> list[Failure]:
        """Call each of ``connections`` once (the ``attempt``-th time); those that raised, with their error."""
        failures = []
        for connection in connections:
            try:
                result = connection.receiver(sender=self.sender, event=event, esp_name=event.esp_name, **kwargs)
                if inspect.isawaitable(result):
                    self.loop.run(result)
            except Exception as error:
                log.exception("receiver %s failed on %s", connection.name, event.dedupe_id)
                failures.append((connection, error))
        return failures


class DedupeWindow:
    """The last ``size`` dedupe ids handled in this process, and those being handled; ``size`` 0 remembers nothing."""

    def __init__(self, size: int):
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        # Being handled by a lane: a repeat on another lane (keyless events of two
        # partitions) must not run alongside it.
        self._handling: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, dedupe_id: str) -> bool:
        """False for a repeat; otherwise the caller handles the event, then add()s or forget()s its id."""
        if not self.size or not dedupe_id:
            return True
        with self._lock:
            if dedupe_id in self._ids:
                self._ids.move_to_end(dedupe_id)
                return False
            if dedupe_id in self._handling:
                return False
            self._handling.add(dedupe_id)
            return True

    def forget(self, dedupe_id: str) -> None:
        """A claimed event was not handled after all (its partition went to another member)."""
        if not self.size or not dedupe_id:
            return
        with self._lock:
            self._handling.discard(dedupe_id)

    def add(self, dedupe_id: str) -> None:
        if not self.size or not dedupe_id:
            return
        with self._lock:
            self._handling.discard(dedupe_id)
            self._ids[dedupe_id] = None
            self._ids.move_to_end(dedupe_id)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)
