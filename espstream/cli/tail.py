"""``espstream tail``: the normalized events as JSON lines."""

import argparse
import sys

from .options import listed, positive, time


def add(commands: argparse._SubParsersAction) -> None:
    tail = commands.add_parser("tail", help="print the normalized events as JSON lines (commits nothing)")
    tail.add_argument("--esp", action="append", metavar="ESP", help="only this ESP (slug or name); repeat or comma-separate")
    tail.add_argument("--type", action="append", metavar="TYPE", help="only this event type; repeat or comma-separate")
    start = tail.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the oldest event (default: only events that arrive from now on)")
    start.add_argument(
        "--from", dest="start", metavar="TIME", type=time, help="start at the events written from TIME on (ISO 8601, UTC unless a zone is given)"
    )
    tail.add_argument("-c", "--count", type=positive, metavar="N", help="exit after printing N events")
    tail.add_argument("-e", "--exit", dest="exit_at_end", action="store_true", help="exit at the end of the topic (as it was when tail started)")
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
            start=args.start,
            count=args.count,
            exit_at_end=args.exit_at_end,
            envelope=args.envelope,
        )
    except ValueError as error:  # an unknown ESP or event type
        print(f"espstream tail: {error}", file=sys.stderr)
        return 2
