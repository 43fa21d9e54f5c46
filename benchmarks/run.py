"""``python -m benchmarks.run``: measure, then rewrite BENCHMARKS.md and benchmarks/results.json.

Each benchmark is one entry of BENCHMARKS (name, what it measures, its anchors,
the function that runs it); ``--only NAME`` runs one (repeatable) and prints its
figures without touching the report. Rounds alternate anchor and figure so that a
slow spell of the machine hits both; every benchmark gets fresh brokers of its own.
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from espstream.stack import available_cores

from . import consumer_bench, cost_model, e2e_bench, http_bench, load_bench, report, stream_bench
from .machine import describe
from .payloads import gateway_request_body
from .stack import fresh_broker, registry

PROFILE_RECORDS = 50_000


def progress(line: str) -> None:
    print(line, flush=True)


def run_gateway(args: argparse.Namespace, log_dir: Path) -> dict:
    """Four servers under the same wrk load, interleaved per round: bare FastAPI and one gateway process;
    the gateway with a worker process per core and anymail under gunicorn (both using every core)."""
    wrk = http_bench.wrk_binary()
    cores = available_cores()
    servers = (("bare", http_bench.measure_bare), ("bare_acked", partial(http_bench.measure_bare, acked=True)),
               ("gateway", http_bench.measure_gateway),
               ("gateway_workers", partial(http_bench.measure_gateway, workers=cores)),
               ("anymail", http_bench.measure_anymail))
    runs: dict[str, list[dict]] = {name: [] for name, _ in servers}
    for index in range(args.rounds):
        for name, measure in servers:
            started = time.monotonic()
            runs[name].append(measure(wrk, log_dir))
            run = runs[name][-1]
            progress(f"  gateway round {index + 1}/{args.rounds} {name:15s} {run['requests_per_second']:9,.0f} req/s "
                     f"non-2xx {run['non_2xx']} ({time.monotonic() - started:.0f} s)")

    def rps(name: str) -> list[float]:
        return [run["requests_per_second"] for run in runs[name]]

    summary = report.summarize_pairs(rps("gateway"), rps("bare"))
    # The physical part of the gap: what answering after the broker's ack costs the bare endpoint.
    summary["acked_of_bare"] = report.summarize_pairs(rps("bare_acked"), rps("bare"))
    summary["of_acked"] = report.summarize_pairs(rps("gateway"), rps("bare_acked"))
    anymail_summary = report.summarize_pairs(rps("gateway_workers"), rps("anymail"))
    for part, name in ((summary, "gateway"), (anymail_summary, "gateway_workers")):
        part["non_2xx"] = sum(g["non_2xx"] + g["warmup_non_2xx"] for g in runs[name])
    return {
        "settings": {
            "threads": http_bench.THREADS,
            "connections": http_bench.CONNECTIONS,
            "warmup_seconds": http_bench.WARMUP_SECONDS,
            "duration_seconds": http_bench.DURATION_SECONDS,
            "gunicorn": {"workers": http_bench.ANYMAIL_WORKERS, "worker_class": http_bench.ANYMAIL_WORKER_CLASS,
                         "threads": http_bench.ANYMAIL_THREADS},
            "gateway_workers": cores,
        },
        "body_bytes": len(gateway_request_body()),
        **runs,
        "summary": summary,
        "anymail_summary": anymail_summary,
    }


NORMALIZER_LOOPS = (("passthrough", 1), ("normalizer", 1), ("normalizer", 2))


def run_normalizer(args: argparse.Namespace, log_dir: Path) -> dict:
    runs: dict[str, list[dict]] = {"passthrough": [], "normalizer": [], "normalizer_2": []}
    for index in range(args.rounds):
        for kind, members in NORMALIZER_LOOPS:
            name = kind if members == 1 else f"{kind}_{members}"
            started = time.monotonic()
            runs[name].append(stream_bench.measure(kind, args.records, log_dir, members=members))
            run = runs[name][-1]
            progress(f"  normalizer round {index + 1}/{args.rounds} {name:13s} {run['per_second'] or 0:9,.0f} records/s "
                     f"out {run['output_records']:,} dlq {run['dead_letters']} ({time.monotonic() - started:.0f} s)")
    passthrough = [p["per_second"] for p in runs["passthrough"]]
    summary = report.summarize_pairs([n["per_second"] for n in runs["normalizer"]], passthrough)
    summary["all_delivered"] = all(
        run["complete"] and run["output_records"] == args.records and run["dead_letters"] == 0
        for loop in runs.values() for run in loop
    )
    return {
        "records": args.records,
        "settings": stream_bench.settings(),
        **runs,
        "summary": summary,
        "summary_2": report.summarize_pairs([n["per_second"] or 0 for n in runs["normalizer_2"]], passthrough),
    }


def run_costs(args: argparse.Namespace, log_dir: Path) -> dict:
    return cost_model.run(log_dir, rounds=args.rounds)


def run_profile(args: argparse.Namespace, log_dir: Path) -> dict:
    started = time.monotonic()
    result = stream_bench.measure("normalizer-stages", min(PROFILE_RECORDS, args.records), log_dir)
    progress(f"  profile {result['per_second']:,.0f} events/s with clocks ({time.monotonic() - started:.0f} s)")
    return result


def run_consumer(args: argparse.Namespace, log_dir: Path) -> dict:
    result = consumer_bench.run(args.events, args.rounds, log_dir, progress)
    runner = [r["per_second"] for r in result["runner"]]
    result["summary"] = report.summarize_pairs(runner, [f["per_second"] for f in result["fastavro"]])
    result["summary"]["all_complete"] = all(r["complete"] for kind in consumer_bench.LOOPS for r in result[kind])
    result["plain_summary"] = report.summarize_pairs(runner, [p["per_second"] for p in result["plain"]])
    return result


def run_durable(args: argparse.Namespace, log_dir: Path) -> dict:
    """What the durable embedded broker costs: the gateway (a worker per core, as `espstream run` starts it) and the
    stack end to end at --durable-rate, each on a memory broker and on a durable one, interleaved per round."""
    wrk = http_bench.wrk_binary()
    cores = available_cores()
    runs: dict[str, list[dict]] = {"gateway_memory": [], "gateway_durable": [], "e2e_memory": [], "e2e_durable": []}
    for index in range(args.rounds):
        round_dir = log_dir / f"durable-round-{index + 1}"
        round_dir.mkdir(exist_ok=True)
        for durable in (False, True):
            kind = "durable" if durable else "memory"
            gateway = http_bench.measure_gateway(wrk, round_dir, workers=cores, durable=durable)
            runs[f"gateway_{kind}"].append(gateway)
            e2e = e2e_bench.measure_rate(args.durable_rate, args.e2e_seconds, round_dir, durable=durable)
            runs[f"e2e_{kind}"].append(e2e)
            progress(f"  durable round {index + 1}/{args.rounds} {kind:7s}: gateway {gateway['requests_per_second']:,.0f} req/s "
                     f"(non-2xx {gateway['non_2xx']}), e2e at {args.durable_rate:,.0f}/s p99 {e2e['latency'].get('p99_ms', float('nan')):.1f} ms, "
                     f"{e2e['arrived']:,}/{e2e['accepted']:,} arrived")
    return {"gateway_workers": cores, "rate": args.durable_rate, "seconds": args.e2e_seconds, **runs,
            "gateway_summary": report.summarize_pairs([r["requests_per_second"] for r in runs["gateway_durable"]],
                                                      [r["requests_per_second"] for r in runs["gateway_memory"]])}


def run_e2e(args: argparse.Namespace, log_dir: Path) -> dict:
    return e2e_bench.run(args.rates, args.e2e_seconds, log_dir, progress, rounds=args.rounds)


def run_load(args: argparse.Namespace, log_dir: Path) -> dict:
    return load_bench.run(args.load_seconds, log_dir, progress)


def run_replay(args: argparse.Namespace, log_dir: Path) -> dict:
    """The replay beside the live normalizer (its anchor), the same records, a fresh broker for each run."""
    from . import replay_bench

    live, replays = [], []
    for index in range(args.rounds):
        started = time.monotonic()
        live.append(stream_bench.measure("normalizer", args.replay_records, log_dir))
        progress(f"  replay round {index + 1}/{args.rounds} normalizer {live[-1]['per_second']:9,.0f} events/s "
                 f"({time.monotonic() - started:.0f} s)")
        started = time.monotonic()
        with fresh_broker(log_dir, f"replay-{index}") as (broker, broker_env):
            with registry(log_dir, f"replay-{index}", broker_env) as (_, env):
                replay_dir = log_dir / f"replay-{index}"
                replay_dir.mkdir(exist_ok=True)
                replays.append(replay_bench.measure(
                    broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], args.replay_records, replay_dir
                ))
        progress(f"  replay round {index + 1}/{args.rounds} replay     {report.per_second(replays[-1]) or 0:9,.0f} events/s "
                 f"({time.monotonic() - started:.0f} s)")
    summary = report.summarize_pairs([report.per_second(r) for r in replays], [n["per_second"] for n in live])
    return {"records": args.replay_records, "normalizer": live, "replay": replays, "summary": summary}


def run_export(args: argparse.Namespace, log_dir: Path) -> dict:
    from . import export_bench

    runs = []
    for index in range(args.rounds):
        started = time.monotonic()
        with fresh_broker(log_dir, f"export-{index}") as (broker, broker_env):
            with registry(log_dir, f"export-{index}", broker_env) as (_, env):
                out_dir = log_dir / f"export-{index}"
                runs.append(export_bench.measure(
                    broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], args.export_events, out_dir
                ))
        progress(f"  export round {index + 1}/{args.rounds} {report.per_second(runs[-1]) or 0:9,.0f} events/s "
                 f"({time.monotonic() - started:.0f} s)")
    return {"events": args.export_events, "runs": runs,
            "summary": {"figure_median": report.median_of([report.per_second(r) for r in runs])}}


def run_console(args: argparse.Namespace, log_dir: Path) -> dict:
    from . import console_bench

    with fresh_broker(log_dir, "console") as (broker, broker_env), registry(log_dir, "console", broker_env) as (_, env):
        result = console_bench.measure(broker.bootstrap_servers, env["ESPSTREAM_SCHEMA_REGISTRY_URL"], args.console_events, log_dir)
    progress("  console " + ", ".join(f"{name} p95 {page['server_p95_ms']:.1f} ms" for name, page in result["pages"].items()))
    return result


def _module_exists(name: str) -> Callable[[], bool]:
    return lambda: importlib.util.find_spec(name) is not None


@dataclass(frozen=True)
class Benchmark:
    name: str
    what: str
    anchors: tuple[str, ...]
    run: Callable[[argparse.Namespace, Path], dict]
    available: Callable[[], bool] = field(default=lambda: True)


BENCHMARKS = [
    Benchmark("gateway", "webhooks/s acknowledged by `espstream gateway`",
              ("bare FastAPI endpoint", "django-anymail's view under gunicorn"), run_gateway),
    Benchmark("costs", "CPU per event of each stage", ("json.loads, orjson, anymail's mapping, bare fastavro, librdkafka",), run_costs),
    Benchmark("normalizer", "events/s of the real NormalizerService, 1 and 2 processes", ("librdkafka passthrough",), run_normalizer),
    Benchmark("profile", "where the normalizer's time goes, per stage", (), run_profile),
    Benchmark("consumer", "events/s through consumers.runner.TrackingConsumer",
              ("consume + fastavro schemaless_reader", "plain confluent-kafka consume + EventDeserializer"), run_consumer),
    Benchmark("e2e", "POST-to-receiver latency at constant offered rates; RSS per process",
              ("the load generator against the bare endpoint",), run_e2e),
    Benchmark("durable", "the gateway and the stack end to end on the durable embedded broker",
              ("the same on the memory broker",), run_durable),
    Benchmark("load", "the gateway at saturation for a minute, and through a broker outage", (), run_load),
    Benchmark("replay", "events/s of a replay", ("the live normalizer",), run_replay,
              _module_exists("benchmarks.replay_bench")),
    Benchmark("export", "events/s of an export", ("50,000 events/s",), run_export,
              _module_exists("benchmarks.export_bench")),
    Benchmark("console", "server time of the console's lookup and recent-events pages over 100k events", (), run_console,
              _module_exists("benchmarks.console_bench")),
]
NAMES = [b.name for b in BENCHMARKS]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=NAMES, action="append", metavar="NAME",
                        help=f"run only these benchmarks (repeatable): {', '.join(NAMES)}; default: all")
    parser.add_argument("--rounds", type=int, default=3, help="anchor/figure pairs per comparison (default 3)")
    parser.add_argument("--records", type=int, default=200_000, help="raw records per normalizer run (default 200000)")
    parser.add_argument("--events", type=int, default=50_000, help="pre-loaded events per consumer run (default 50000)")
    parser.add_argument("--rates", type=lambda s: [float(r) for r in s.split(",")], default=[1000.0, 3000.0],
                        help="end-to-end offered rates, webhooks/s, comma-separated (default 1000,3000)")
    parser.add_argument("--e2e-seconds", type=float, default=20.0,
                        help=f"measured seconds per end-to-end rate, after {e2e_bench.WARMUP_SECONDS:.0f} s of warm-up (default 20)")
    parser.add_argument("--durable-rate", type=float, default=250.0,
                        help="end-to-end offered rate of the durable-broker comparison, webhooks/s (default 250: what the "
                        "durable stack took on this machine with idempotent producers; without, it falls behind there, "
                        "see BENCHMARKS.md)")
    parser.add_argument("--load-seconds", type=int, default=60, help="seconds of saturation in the load run (default 60)")
    parser.add_argument("--replay-records", type=int, default=100_000, help="records per replay run (default 100000)")
    parser.add_argument("--export-events", type=int, default=100_000, help="events per export run (default 100000)")
    parser.add_argument("--console-events", type=int, default=100_000,
                        help="events on the topic the console benchmark reads (default 100000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    log_dir = Path(tempfile.mkdtemp(prefix="espstream-bench-"))
    progress(f"benchmarks: logs in {log_dir}")
    wrk_version = http_bench.wrk_version(http_bench.wrk_binary()) if {"gateway", "load"} & {b.name for b in chosen} else None
    results: dict = {"machine": describe(wrk_version), "benchmarks": {}, "skipped": {}}
    started = time.monotonic()
    for benchmark in chosen:
        if not benchmark.available():
            results["skipped"][benchmark.name] = "its module is not there"
            progress(f"{benchmark.name}: skipped, its module is not there")
            continue
        progress(f"{benchmark.name}: {benchmark.what}" + (f" vs {', '.join(benchmark.anchors)}" if benchmark.anchors else ""))
        begun = time.monotonic()
        result = benchmark.run(args, log_dir)
        result["elapsed_seconds"] = round(time.monotonic() - begun)
        results["benchmarks"][benchmark.name] = result
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["seconds"] = round(time.monotonic() - started)
    if args.only:  # a partial run prints its figures and leaves the full report alone
        print(json.dumps(results, indent=2, default=str))
        return 0
    report.write(results)
    progress(f"wrote {report.BENCHMARKS_MD} and {report.RESULTS_JSON} ({results['machine']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
