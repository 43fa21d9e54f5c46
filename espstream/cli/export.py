"""``espstream export``: the normalized events of a time range as Avro (or Parquet, JSON lines) files, a directory per event date."""

import argparse
import sys

from .options import time


def add(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="write the normalized events of a time range as Avro (or Parquet, JSON lines) files, a directory per event date",
        description=(
            "Write the events written to the normalized topic from --from until --to (record times: when the"
            " normalizer wrote them) as Avro container files OUT/date=YYYY-MM-DD/<topic>-p<partition>-<first>-<last>"
            "-schema<id>.avro, by the event's timestamp in UTC (else when the webhook was received, else date=unknown)."
            " Running the same range again writes the same files. --format parquet (pip install 'espstream[parquet]')"
            " or jsonl: the same layout, .parquet or .jsonl files of the decoded events."
        ),
    )
    export.add_argument("--from", dest="start", metavar="TIME", type=time, help="ISO 8601, UTC unless a zone is given (default: the oldest record)")
    export.add_argument("--to", dest="end", metavar="TIME", type=time, help="exclusive, ISO 8601 (default: now)")
    export.add_argument("--out", required=True, metavar="DIR", help="the directory to write the date=... directories into")
    export.add_argument("--topic", help="another topic of Avro events (default: the normalized topic)")
    export.add_argument(
        "--format",
        choices=("avro", "parquet", "jsonl"),
        default="avro",
        help="avro (default: the records' own bytes), parquet (for DuckDB, Polars, pandas with pyarrow) or jsonl",
    )
    export.add_argument(
        "--compression-level", type=int, default=1, choices=range(10), metavar="0-9", help="deflate level (default 1: fastest)"
    )
    export.add_argument(
        "--skip-undecodable",
        action="store_true",
        help="leave out records no registered schema decodes, listing them (default: stop at the first)",
    )
    export.add_argument(
        "--verify", action="store_true", help="decode every record whole before writing it (slower; default: up to its date)"
    )
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from espstream.consumers.export import Exporter, ExportError
    from espstream.plumbing.config import CommonSettings

    try:
        exporter = Exporter(
            CommonSettings(),
            args.out,
            topic=args.topic,
            start=args.start,
            end=args.end,
            compression_level=args.compression_level,
            skip_undecodable=args.skip_undecodable,
            verify=args.verify,
            file_format=args.format,
        )
    except ValueError as error:
        print(f"espstream export: {error}", file=sys.stderr)
        return 2
    try:
        summary = exporter.run()
    except ExportError as error:
        print(f"espstream export: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary.lines()), flush=True)
    return 0
