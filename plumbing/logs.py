"""Logging for every ``espstream`` command: JSON lines for machines, plain lines for people.

``ESPSTREAM_LOG_FORMAT`` is ``json`` or ``text``; unset, it is ``text`` when
stderr is a terminal and ``json`` otherwise (a container, a service manager, a
file). ``ESPSTREAM_LOG_LEVEL`` is a level name (default ``INFO``).

A JSON line holds ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, then any structured fields: those given as ``extra=`` and the
``request_id`` of the webhook in hand (``REQUEST_ID``, set by the gateway per
request, by the normalizer per raw record and by the consumer runner per
event), then ``exc_info`` with the traceback. Text lines end with the same
fields as ``name=value``. uvicorn's loggers propagate here too.
"""

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# The request id of the webhook being handled in this thread or task, if any.
REQUEST_ID: ContextVar[str | None] = ContextVar("espstream_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Record attributes that are not structured fields. uvicorn adds ``color_message`` (ANSI codes).
NOT_FIELDS = frozenset({*RESERVED_ATTRS, "taskName", "color_message"})
# Loggers that say too much at INFO: the schema-registry client logs every HTTP request.
QUIET_LOGGERS = ("httpx", "httpx2")


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESPSTREAM_", extra="ignore")

    # json | text; unset: text on a terminal, else json.
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` from the context to records that do not carry one already."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                record.request_id = request_id
        return True


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, then the structured fields."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=sorted(NOT_FIELDS),
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        # A traceback last, after the short fields a reader scans for.
        for name in ("exc_info", "stack_info"):
            if name in log_data:
                log_data[name] = log_data.pop(name)


class TextFormatter(logging.Formatter):
    """The classic line, then the structured fields as ``name=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{name}={value}" for name, value in record.__dict__.items() if name not in NOT_FIELDS]
        if not fields:
            return line
        # The traceback, if any, stays last.
        head, newline, tail = line.partition("\n")
        return f"{head} {' '.join(fields)}{newline}{tail}"


def configure(settings: LogSettings | None = None, stream: Any = None) -> None:
    """Send every logger's records to ``stream`` (stderr) in the configured format, uvicorn's included."""
    settings = settings or LogSettings()
    stream = stream or sys.stderr
    log_format = settings.log_format or ("text" if _is_terminal(stream) else "json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn configures its loggers only when given a log_config; without one they reach this handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
