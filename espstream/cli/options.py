"""What several commands parse alike: lists, times, counts, positions; and the receiver modules they load."""

import argparse
import importlib
import os
import sys
from datetime import datetime

from espstream.plumbing.times import parse_time


def listed(values: list[str] | None) -> list[str] | None:
    """Repeated options and comma-separated lists alike: ``--esp a,b --esp c``."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()] if values else None


def time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return number


def position(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET``, as ``dlq list`` prints them."""
    partition, _, offset = text.partition(":")
    try:
        parsed = int(partition), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET, e.g. 0:42") from None
    if min(parsed) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: partition and offset are not negative")
    return parsed


def load_receivers(command: str, modules: list[str], django_settings: str | None) -> bool:
    """Set up the Django project, then import the receiver modules; False (said on stderr) if either cannot be.

    Receiver modules are named like imports from the working directory. The
    Django project comes first: the modules may use its models. A module that
    cannot be imported is most often a run from another folder: the hint says
    where it was looked for, not a traceback.
    """
    sys.path.insert(0, ".")
    if django_settings:
        from espstream.consumers.django_bridge import DjangoUnavailable, setup

        try:
            setup(django_settings)
        except DjangoUnavailable as error:
            print(f"espstream {command}: {error}", file=sys.stderr)
            return False
        except ImportError as error:
            _import_hint(command, "the Django settings", django_settings, error)
            return False
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            _import_hint(command, "the receiver module", module, error)
            return False
    return True


def _import_hint(command: str, what: str, module: str, error: ImportError) -> None:
    print(
        f"espstream {command}: cannot import {what} {module!r}: {error}\n"
        f"  it is imported as from the working directory ({os.getcwd()}) and PYTHONPATH"
        f" ({os.environ.get('PYTHONPATH') or 'not set'}): run from the project's folder, or add it to PYTHONPATH",
        file=sys.stderr,
    )
