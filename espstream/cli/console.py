"""``espstream console [MODULE ...]``: the operator console, a web app over the topics."""

import argparse
import sys

from .options import load_receivers


def add(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        "console",
        help="the operator console (web): recent events, a message's timeline, dead letters and their redrive, event rates",
    )
    console.add_argument(
        "modules", nargs="*", metavar="MODULE",
        help="receiver module(s), as given to `consume`: lets the console redrive receiver groups' dead letters",
    )
    console.add_argument("--django-settings", metavar="SETTINGS_MODULE", help="as given to `consume`")
    console.set_defaults(func=_console)


def _console(args: argparse.Namespace) -> int:
    from espstream.console.app import serve
    from espstream.console.settings import ConsoleSettings

    settings = ConsoleSettings()
    refusal = settings.refusal()
    if refusal:
        print(f"espstream console: {refusal}", file=sys.stderr)
        return 2
    receivers = bool(args.modules or args.django_settings)
    if receivers and not load_receivers("console", args.modules, args.django_settings):
        return 2
    return serve(settings, receivers)
