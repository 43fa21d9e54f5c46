"""``espstream replay``: normalize a range of the raw topic again (``--diff``: only show what would change)."""

import argparse
import json
import sys

from espstream.plumbing.times import millis

from .options import listed, time


def add(commands: argparse._SubParsersAction) -> None:
    replay = commands.add_parser(
        "replay", help="normalize a range of the raw topic again with the current normalizer (--diff: only show what changes)"
    )
    replay.add_argument("--from", dest="start", metavar="TIME", type=time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    replay.add_argument("--to", dest="end", metavar="TIME", type=time, help="exclusive, ISO 8601 (default: the end of each partition at the first start)")
    replay.add_argument(
        "--from-offsets", action="append", metavar="P:OFFSET", help="start offsets, e.g. 0:100,1:250; only the partitions named are read"
    )
    replay.add_argument("--to-offsets", action="append", metavar="P:OFFSET", help="end offsets (exclusive), e.g. 0:900,1:1200")
    replay.add_argument("--esp", action="append", metavar="ESP", help="only this ESP (slug or name); repeat or comma-separate")
    replay.add_argument("--to-topic", metavar="TOPIC", help="write the events here (default: the normalized topic)")
    replay.add_argument("--dlq-topic", metavar="TOPIC", help="write dead letters here (default: the normalizer's)")
    replay.add_argument("--name", help="the replay's checkpoint name (default: derived from the range, ESPs and topics)")
    replay.add_argument("--restart", action="store_true", help="start the named replay over, even if it finished")
    replay.add_argument("--diff", action="store_true", help="write nothing: compare the events now with those on the target topic")
    replay.add_argument("--json", action="store_true", help="print the summary or the diff as JSON")
    replay.add_argument(
        "--exit-code", action="store_true", help="with --diff: exit 1 when anything differs, 0 when nothing does (as git diff)"
    )
    replay.add_argument(
        "--progress-interval", type=float, default=5.0, metavar="SECONDS", help="seconds between progress lines when not on a terminal"
    )
    replay.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaException

    from espstream.normalizer.ranges import RangeError, RangeSpec, esp_slug, parse_offsets
    from espstream.normalizer.replay import ReplayError

    try:
        spec = RangeSpec(
            from_time=millis(args.start) if args.start else None,
            to_time=millis(args.end) if args.end else None,
            from_offsets=parse_offsets(listed(args.from_offsets)) if args.from_offsets else None,
            to_offsets=parse_offsets(listed(args.to_offsets)) if args.to_offsets else None,
        )
        esps = [esp_slug(name) for name in listed(args.esp) or ()] or None
        if args.diff and (args.name or args.restart):
            raise RangeError("--diff writes nothing and keeps no checkpoint: --name and --restart do not apply")
        if args.exit_code and not args.diff:
            raise RangeError("--exit-code goes with --diff")
        options = {"esps": esps, "to_topic": args.to_topic, "dlq_topic": args.dlq_topic}
        if args.diff:
            from espstream.normalizer.diff import Diff, format_report

            try:
                report = Diff(spec, **options).run()
            except KeyboardInterrupt:  # nothing was written: nothing to finish
                return 130
            print(json.dumps(report.as_json(), ensure_ascii=False) if args.json else format_report(report), flush=True)
            return 1 if args.exit_code and report.differs else 0
        from espstream.normalizer.replay import Replay, format_summary, run

        replay = Replay(spec, name=args.name, restart=args.restart, progress_interval=args.progress_interval, **options)
        summary = run(replay)
    except RangeError as error:
        print(f"espstream replay: {error}", file=sys.stderr)
        return 2
    except (KafkaException, ReplayError) as error:
        print(f"espstream replay: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary.as_json()) if args.json else format_summary(summary), flush=True)
    return 130 if summary.status == "interrupted" else 0
