"""How every long-running service runs: until SIGTERM or SIGINT, a taken metrics port a setting to fix."""

import logging
import signal
from typing import Protocol

from .metrics import MetricsPortUnavailable


class Service(Protocol):
    def run(self) -> None: ...

    def stop(self, *_args: object) -> None: ...


def run_until_signalled(service: Service, log: logging.Logger) -> None:
    """``service.run()`` until SIGTERM or SIGINT calls ``service.stop``; exit status 2 when its metrics port is taken."""
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    try:
        service.run()
    except MetricsPortUnavailable as error:  # a setting to fix, not a crash
        log.error("cannot serve metrics: %s", error)
        raise SystemExit(2) from None
