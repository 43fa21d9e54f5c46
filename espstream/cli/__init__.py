"""``espstream <command>``: wires the services to the command line, a module per command."""

import argparse
import sys

from . import audit, console, dlq, export, group, replay, services, tail, topics


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="espstream",
        description="ESP tracking webhooks in, normalized Avro events out. Settings: ESPSTREAM_* variables.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (services, tail, dlq, group, topics, audit, replay, export, console):
        command.add(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from espstream.plumbing.logs import configure

    try:
        configure()  # JSON lines unless stderr is a terminal (ESPSTREAM_LOG_FORMAT, ESPSTREAM_LOG_LEVEL)
    except ValidationError as error:
        print(f"espstream: {error}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
