"""``espstream tail``: the normalized events as JSON lines."""

import argparse
import sys

from .options import listed


def add(commands: argparse._SubParsersAction) -> None:
    tail = commands.add_parser("tail", help="print the normalized events as JSON lines (commits nothing)")
    tail.add_argument("--esp", action="append", metavar="ESP", help="only this ESP (slug or name); repeat or comma-separate")
    tail.add_argument("--type", action="append", metavar="TYPE", help="only this event type; repeat or comma-separate")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest event (default: only events that arrive from now on)")
    tail.add_argument("--envelope", "-J", action="store_true", help="wrap each event like kcat -J: topic, partition, offset, ts, headers, key, payload")
    tail.add_argument("--topic", help="another topic of Avro events, e.g. a group's dead letters (default: the normalized topic)")
    tail.set_defaults(func=_tail)


def _tail(args: argparse.Namespace) -> int:
    from espstream.consumers.tail import run
    from espstream.plumbing.config import CommonSettings

    try:
        return run(
            CommonSettings(),
            topic=args.topic,
            esps=listed(args.esp),
            event_types=listed(args.type),
            from_beginning=args.from_beginning,
            envelope=args.envelope,
        )
    except ValueError as error:  # an unknown ESP or event type
        print(f"espstream tail: {error}", file=sys.stderr)
        return 2
