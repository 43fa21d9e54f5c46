"""``espstream audit``: every raw webhook in a range has its events, its dead letter, or none by design."""

import argparse
import json
import sys

from .options import positive, time


def add(commands: argparse._SubParsersAction) -> None:
    audit = commands.add_parser(
        "audit", help="check that every raw webhook in a time range has its events, its dead letter, or none by design"
    )
    audit.add_argument("--from", dest="start", metavar="TIME", type=time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    audit.add_argument("--to", dest="end", metavar="TIME", type=time, help="exclusive, ISO 8601 (default: the newest record)")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument("--examples", type=positive, default=5, metavar="N", help="missing records to show (default 5)")
    audit.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    from espstream.normalizer.audit import AuditError, audit, render
    from espstream.normalizer.settings import NormalizerSettings

    try:
        report = audit(NormalizerSettings(), args.start, args.end, examples=args.examples)
    except AuditError as error:
        print(f"espstream audit: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 0 if report.ok else 1
