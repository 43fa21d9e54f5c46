"""``python -m benchmarks.run``: measure, then rewrite BENCHMARKS.md and benchmarks/results.json.

1. gateway: `espstream gateway` vs a bare FastAPI endpoint under the same wrk load;
2. normalizer: the real NormalizerService vs a librdkafka passthrough over the same pre-loaded records;
3. profile: the normalizer again with a clock on every stage.
Rounds alternate anchor and figure so that a slow spell of the machine hits both.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from . import http_bench, report, stream_bench
from .machine import describe
from .payloads import gateway_request_body

PROFILE_RECORDS = 50_000


def run_gateway(rounds: int, log_dir: Path) -> dict:
    wrk = http_bench.wrk_binary()
    bare, gateway = [], []
    for index in range(rounds):
        for name, measure, runs in (("bare", http_bench.measure_bare, bare), ("gateway", http_bench.measure_gateway, gateway)):
            started = time.monotonic()
            runs.append(measure(wrk, log_dir))
            print(f"  gateway round {index + 1}/{rounds} {name:8s} {runs[-1]['requests_per_second']:9,.0f} req/s "
                  f"non-2xx {runs[-1]['non_2xx']} ({time.monotonic() - started:.0f} s)", flush=True)
    summary = report.summarize_pairs([g["requests_per_second"] for g in gateway], [b["requests_per_second"] for b in bare])
    summary["non_2xx"] = sum(g["non_2xx"] + g["warmup_non_2xx"] for g in gateway)
    return {
        "settings": {
            "threads": http_bench.THREADS,
            "connections": http_bench.CONNECTIONS,
            "warmup_seconds": http_bench.WARMUP_SECONDS,
            "duration_seconds": http_bench.DURATION_SECONDS,
        },
        "body_bytes": len(gateway_request_body()),
        "bare": bare,
        "gateway": gateway,
        "summary": summary,
    }


def run_normalizer(records: int, rounds: int, log_dir: Path) -> dict:
    passthrough, normalizer = [], []
    for index in range(rounds):
        for kind, runs in (("passthrough", passthrough), ("normalizer", normalizer)):
            started = time.monotonic()
            runs.append(stream_bench.measure(kind, records, log_dir))
            run = runs[-1]
            print(f"  normalizer round {index + 1}/{rounds} {kind:11s} {run['per_second']:9,.0f} records/s "
                  f"out {run['output_records']:,} dlq {run['dead_letters']} ({time.monotonic() - started:.0f} s)", flush=True)
    summary = report.summarize_pairs([n["per_second"] for n in normalizer], [p["per_second"] for p in passthrough])
    summary["all_delivered"] = all(
        run["complete"] and run["output_records"] == records and run["dead_letters"] == 0
        for run in passthrough + normalizer
    )
    return {
        "records": records,
        "settings": stream_bench.settings(),
        "passthrough": passthrough,
        "normalizer": normalizer,
        "summary": summary,
    }


def run_profile(records: int, log_dir: Path) -> dict:
    started = time.monotonic()
    result = stream_bench.measure("normalizer-stages", records, log_dir)
    print(f"  profile {result['per_second']:,.0f} events/s with clocks ({time.monotonic() - started:.0f} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["gateway", "normalizer", "profile"], action="append",
                        help="run only these parts (repeatable); default: all")
    parser.add_argument("--records", type=int, default=200_000, help="raw records per normalizer run (default 200000)")
    parser.add_argument("--rounds", type=int, default=3, help="anchor/figure pairs per comparison (default 3)")
    args = parser.parse_args(argv)
    parts = set(args.only or ["gateway", "normalizer", "profile"])

    log_dir = Path(tempfile.mkdtemp(prefix="espstream-bench-"))
    print(f"benchmarks: logs in {log_dir}", flush=True)
    wrk_version = http_bench.wrk_version(http_bench.wrk_binary()) if "gateway" in parts else None
    results: dict = {"machine": describe(wrk_version)}
    started = time.monotonic()
    if "gateway" in parts:
        print("gateway vs bare FastAPI endpoint", flush=True)
        results["gateway"] = run_gateway(args.rounds, log_dir)
    if "normalizer" in parts:
        print("normalizer vs librdkafka passthrough", flush=True)
        results["normalizer"] = run_normalizer(args.records, args.rounds, log_dir)
    if "profile" in parts:
        print("normalizer stage profile", flush=True)
        results["profile"] = run_profile(min(PROFILE_RECORDS, args.records), log_dir)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["seconds"] = round(time.monotonic() - started)
    if args.only:  # a partial run prints its figures and leaves the full report alone
        print(json.dumps({part: results[part] for part in parts}, indent=2, default=str))
        return 0
    report.write(results)
    print(f"wrote {report.BENCHMARKS_MD} and {report.RESULTS_JSON} ({results['machine']['seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
