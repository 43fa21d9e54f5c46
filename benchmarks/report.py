"""BENCHMARKS.md and benchmarks/results.json, regenerated from one run's results."""

import json
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
NOTES_MD = ROOT / "benchmarks" / "notes.md"

GATEWAY_GOAL = 0.60
NORMALIZER_GOAL = 0.50


def summarize_pairs(figures: list[float], anchors: list[float]) -> dict[str, Any]:
    """Median of each side, their ratio, and each round's own ratio."""
    return {
        "figure_median": median(figures),
        "anchor_median": median(anchors),
        "ratio": median(figures) / median(anchors),
        "round_ratios": [f / a for f, a in zip(figures, anchors)],
    }


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _latency(runs: list[dict]) -> str:
    p50 = median(run["latency_p50_us"] for run in runs) / 1000
    p99 = median(run["latency_p99_us"] for run in runs) / 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def _gateway_rows(gateway: dict) -> list[str]:
    s = gateway["summary"]
    met = "yes" if s["ratio"] >= GATEWAY_GOAL and s["non_2xx"] == 0 else "no"
    return [
        f"| Gateway: webhooks/s acknowledged (`espstream gateway`, Postmark JSON {gateway['body_bytes']} B, basic auth, "
        f"broker ack) | {_fmt(s['figure_median'])} req/s; {s['non_2xx']} non-2xx; {_latency(gateway['gateway'])} | "
        f"bare FastAPI POST endpoint, same uvicorn options: {_fmt(s['anchor_median'])} req/s; "
        f"{_latency(gateway['bare'])} | {_pct(s['ratio'])} | ≥ {_pct(GATEWAY_GOAL)}, 0 non-2xx | {met} |"
    ]


def _normalizer_rows(stream: dict) -> list[str]:
    s = stream["summary"]
    met = "yes" if s["ratio"] >= NORMALIZER_GOAL and s["all_delivered"] else "no"
    return [
        f"| Normalizer: events/s (real `NormalizerService`, {_fmt(stream['records'])} pre-loaded raw Postmark "
        f"records -> Avro via the schema registry, committed) | {_fmt(s['figure_median'])} events/s | "
        f"librdkafka consume -> produce -> flush -> commit passthrough, same batch size and topics: "
        f"{_fmt(s['anchor_median'])} records/s | {_pct(s['ratio'])} | ≥ {_pct(NORMALIZER_GOAL)} | {met} |"
    ]


def _gateway_detail(gateway: dict) -> list[str]:
    lines = [
        "| round | server | req/s | non-2xx | socket errors | p50 | p99 | max | server CPU / request | records on raw topic / 200s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, (bare, gw) in enumerate(zip(gateway["bare"], gateway["gateway"]), 1):
        for name, run in (("bare", bare), ("gateway", gw)):
            stored = f"{_fmt(run['raw_records'])} / {_fmt(run['answered_200'])}" if "raw_records" in run else "—"
            lines.append(
                f"| {index} | {name} | {_fmt(run['requests_per_second'])} | {run['non_2xx']} | {run['socket_errors']} | "
                f"{run['latency_p50_us'] / 1000:.1f} ms | {run['latency_p99_us'] / 1000:.1f} ms | "
                f"{run['latency_max_us'] / 1000:.1f} ms | {_fmt(run['server_cpu_us_per_request'])} µs | {stored} |"
            )
    return lines


def _normalizer_detail(stream: dict) -> list[str]:
    lines = [
        "| round | loop | records/s | seconds | process CPU / record | records out | dead letters | load avg before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, (passthrough, normalizer) in enumerate(zip(stream["passthrough"], stream["normalizer"]), 1):
        for name, run in (("passthrough", passthrough), ("normalizer", normalizer)):
            lines.append(
                f"| {index} | {name} | {_fmt(run['per_second'])} | {run['seconds']:.2f} | "
                f"{run['cpu_us_per_record']:.1f} µs | {_fmt(run['output_records'])} | {run['dead_letters']} | "
                f"{run['load_average_before']:.2f} |"
            )
    return lines


# The stages of profiling.STAGES, grouped as the question is usually asked.
PROFILE_GROUPS = {
    "JSON parsing": ("json_parse",),
    "normalization (raw record decoding, Postmark mapping)": ("raw_decode", "normalize"),
    "Avro serialization (provenance, record dict, esp_event JSON, body, framing)": (
        "encode", "serialize", "to_record", "json_dump", "avro_write",
    ),
    "produce": ("produce",),
    "flush + commit": ("flush", "commit"),
    "consume + loop": ("consume", "loop_rest"),
}


def _profile_detail(profile: dict) -> list[str]:
    per_stage = {row["stage"]: row for row in profile["stages"]}
    groups = []
    for group, stages in PROFILE_GROUPS.items():
        us = sum(per_stage[stage]["us_per_event"] for stage in stages if stage in per_stage)
        share = sum(per_stage[stage]["share"] for stage in stages if stage in per_stage)
        groups.append(f"{group} {us:.1f} µs ({_pct(share)})")
    lines = [
        f"Instrumented run over {_fmt(profile['records'])} records: {_fmt(profile['per_second'])} events/s "
        f"with the clocks on, {1e6 / profile['per_second']:.1f} µs of wall time per event. "
        "Stages are timed with perf_counter around the functions that do them, in the real service; "
        "nested ones are shown without their children (`benchmarks/profiling.py`).",
        "",
        "Per event: " + "; ".join(groups) + ".",
        "",
        "| stage | µs / event | share of wall time | what |",
        "|---|---|---|---|",
    ]
    for row in profile["stages"]:
        lines.append(f"| {row['stage']} | {row['us_per_event']:.1f} | {_pct(row['share'])} | {row['what']} |")
    return lines


def _machine(machine: dict) -> list[str]:
    return [f"- {name}: {value}" for name, value in machine.items()]


def write(results: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python -m benchmarks.run`); every run rewrites this file and "
        "`benchmarks/results.json`. Each figure is measured beside its anchor, in the same run on the same "
        "machine, rounds interleaved (anchor, figure, anchor, figure, ...); the table gives the medians. "
        "These are measurements, not tests: nothing fails when a goal is missed.",
        "",
        "| what | figure | anchor | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    if "gateway" in results:
        md += _gateway_rows(results["gateway"])
    if "normalizer" in results:
        md += _normalizer_rows(results["normalizer"])
    md += ["", "## Machine", ""] + _machine(results["machine"])
    md += [
        "",
        "## How to reproduce",
        "",
        "```",
        "make bench                                   # everything, about 6 minutes",
        ".venv/bin/python -m benchmarks.run --only gateway",
        ".venv/bin/python -m benchmarks.run --only normalizer --records 100000 --rounds 1",
        "```",
        "",
        "Needs `wrk` (installed with apt-get when missing and running as root). Every process (Tansu broker, "
        "schema registry, gateway, bare app, workers) is started on 127.0.0.1 and stopped by the script; logs go "
        "to a temporary directory printed at the start. Other work on the machine skews the figures: the load "
        "average before each run is recorded. With `--only`, the figures are printed and this file is left as it is.",
    ]
    if "gateway" in results:
        g = results["gateway"]
        md += [
            "",
            "## Gateway details",
            "",
            f"wrk {g['settings']['threads']} thread, {g['settings']['connections']} connections, "
            f"{g['settings']['warmup_seconds']} s warm-up then {g['settings']['duration_seconds']} s measured, "
            f"POST of a {g['body_bytes']}-byte Postmark bounce with basic auth. The gateway runs against a fresh "
            "embedded broker per round and answers only after the broker acknowledged (acks=all). Round ratios: "
            + ", ".join(_pct(r) for r in g["summary"]["round_ratios"])
            + f". Non-2xx over all measured gateway runs: {g['summary']['non_2xx']}.",
            "",
        ] + _gateway_detail(g)
    if "normalizer" in results:
        n = results["normalizer"]
        md += [
            "",
            "## Normalizer details",
            "",
            f"Each run: a fresh embedded broker, {_fmt(n['records'])} raw records pre-loaded with the gateway's "
            f"record headers ({n['settings']['partitions']} partitions), then the timed loop in a process of its own, "
            f"batch size {n['settings']['batch_size']}. Time runs from the first batch consumed to the commit of the "
            "last record; the group join before it is not counted. The output topic is read back afterwards "
            "(every record must be there, no dead letters). Round ratios: "
            + ", ".join(_pct(r) for r in n["summary"]["round_ratios"])
            + ".",
            "",
        ] + _normalizer_detail(n)
    if "profile" in results:
        md += ["", "## Where the normalizer's time goes", ""] + _profile_detail(results["profile"])
    if NOTES_MD.exists():
        md += ["", NOTES_MD.read_text().rstrip()]
    BENCHMARKS_MD.write_text("\n".join(md) + "\n")
