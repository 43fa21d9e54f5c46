"""BENCHMARKS.md and benchmarks/results.json, regenerated from one run's results.

A goal is "yes" or "no" only when it was measured in this run; otherwise the
table says why it was not.
"""

import json
import math
from pathlib import Path
from statistics import median
from typing import Any

from espstream.normalizer.settings import NormalizerSettings
from espstream.plumbing.batches import FETCH_WAIT_MS

BATCH_WAIT_MS = NormalizerSettings.model_fields["normalizer_batch_wait_ms"].default

ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
NOTES_MD = ROOT / "benchmarks" / "notes.md"

GATEWAY_GOAL = 0.80  # one gateway process, of the bare endpoint's req/s in one process
ANYMAIL_GOAL = 2.0  # the gateway with a worker per core, times anymail's req/s under its best gunicorn set-up
NORMALIZER_GOAL = 0.40  # of the passthrough's records/s, one process
CONSUMER_GOAL = 0.80  # of the fastavro loop's events/s (consume + schemaless_reader)
LATENCY_P99_GOAL_MS = 100.0  # at rates up to 1,000/s
# p99 goals by offered rate: 1,000/s within 100 ms, 3,000/s within 500 ms.
LATENCY_P99_GOALS_MS = {1000.0: 100.0, 3000.0: 500.0}
RSS_GROWTH_GOAL = 0.10
REPLAY_GOAL = 1.0  # of the live normalizer's events/s
EXPORT_GOAL = 50_000  # events/s per process
CONSOLE_GOAL_MS = 200.0  # server time of a console page (p95) with 100k events on the topic
# An offered rate counts as offered when the client sent at least this share of it.
OFFERED_SHARE = 0.95

NOT_MEASURED = "not measured"


def summarize_pairs(figures: list[float], anchors: list[float]) -> dict[str, Any]:
    """Median of each side, their ratio, and each round's own ratio."""
    return {
        "figure_median": median(figures),
        "anchor_median": median(anchors),
        "ratio": median(figures) / median(anchors),
        "round_ratios": [f / a for f, a in zip(figures, anchors)],
    }


def per_second(result: dict) -> float | None:
    """The events/s figure of a result dict written by another module (replay, export)."""
    for key in ("per_second", "events_per_second", "records_per_second"):
        if isinstance(result.get(key), (int, float)):
            return float(result[key])
    return None


def median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if present else None


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


def _latency(runs: list[dict]) -> str:
    p50 = median(run["latency_p50_us"] for run in runs) / 1000
    p99 = median(run["latency_p99_us"] for run in runs) / 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


# The summary table: one function per benchmark, each giving its rows and whether each goal was met.

def _gateway_rows(g: dict) -> list[tuple[str, str, bool | None]]:
    s, a = g["summary"], g["anymail_summary"]
    bare_ok = s["ratio"] >= GATEWAY_GOAL and s["non_2xx"] == 0
    anymail_ok = a["ratio"] >= ANYMAIL_GOAL and a["non_2xx"] == 0
    gunicorn = g["settings"]["gunicorn"]
    workers = g["settings"]["gateway_workers"]
    return [
        (_row(
            f"Gateway, one process: webhooks/s acknowledged (`espstream gateway`, Postmark JSON {g['body_bytes']} B, "
            "basic auth, broker ack)",
            f"{_fmt(s['figure_median'])} req/s; {s['non_2xx']} non-2xx; {_latency(g['gateway'])}; "
            f"{_cpu(g['gateway'])} server CPU/request",
            f"bare FastAPI POST endpoint, one process, same uvicorn options: {_fmt(s['anchor_median'])} req/s; "
            f"{_latency(g['bare'])}; {_cpu(g['bare'])} server CPU/request"
            + (f". Beside it, the same endpoint answering after the broker's ack (librdkafka produce, acks=all, its "
               f"delivery callback resolving the request): {_fmt(s['acked_of_bare']['figure_median'])} req/s, "
               f"{_pct(s['acked_of_bare']['ratio'])} of bare; {_cpu(g['bare_acked'])} server CPU/request (gateway "
               f"{_pct(s['of_acked']['ratio'])} of it)" if "acked_of_bare" in s else ""),
            _pct(s["ratio"]), f"one process ≥ {_pct(GATEWAY_GOAL)} of bare, 0 non-2xx", _met(bare_ok),
        ), "gateway_bare", bare_ok),
        (_row(
            f"Gateway, {workers} worker processes (`espstream gateway --workers {workers}`, one per core) vs "
            "django-anymail 15.2's own `PostmarkTrackingWebhookView` (same wrk load and body)",
            f"{_fmt(a['figure_median'])} req/s; {a['non_2xx']} non-2xx; {_latency(g['gateway_workers'])}; "
            f"{_cpu(g['gateway_workers'])} server CPU/request",
            f"anymail under gunicorn, {gunicorn['workers']} {gunicorn['worker_class']} workers x {gunicorn['threads']} "
            f"threads: {_fmt(a['anchor_median'])} req/s; {_latency(g['anymail'])}; {_cpu(g['anymail'])} server CPU/request",
            f"{a['ratio']:.2f}× (server CPU per request: {_cpu_ratio(g):.2f}× less)", f"≥ {ANYMAIL_GOAL:g}× anymail, 0 non-2xx",
            _met(anymail_ok),
        ), "gateway_anymail", anymail_ok),
    ]


def _cpu(runs: list[dict]) -> str:
    return f"{_fmt(median(run['server_cpu_us_per_request'] for run in runs))} µs"


def _cpu_ratio(g: dict, name: str = "gateway_workers") -> float:
    """anymail's server CPU per request over the gateway's (medians): how much cheaper a request is, core for core."""
    anymail = median(run["server_cpu_us_per_request"] for run in g["anymail"])
    return anymail / median(run["server_cpu_us_per_request"] for run in g[name])


def _normalizer_rows(n: dict) -> list[tuple[str, str, bool | None]]:
    s = n["summary"]
    ok = s["ratio"] >= NORMALIZER_GOAL and s["all_delivered"]
    rows = [(_row(
        f"Normalizer, one process: events/s (real `NormalizerService`, {_fmt(n['records'])} pre-loaded raw Postmark "
        "records -> Avro via the schema registry, committed)",
        f"{_fmt(s['figure_median'])} events/s; {_run_cpu(n['normalizer'])} CPU/event",
        f"librdkafka consume -> produce -> flush -> commit passthrough, same batch size and topics: "
        f"{_fmt(s['anchor_median'])} records/s; {_run_cpu(n['passthrough'])} CPU/record",
        _pct(s["ratio"]), f"≥ {_pct(NORMALIZER_GOAL)}", _met(ok),
    ), "normalizer", ok)]
    if n.get("normalizer_2"):
        two = n["summary_2"]
        rows.append((_row(
            "Normalizer, two processes (`espstream normalize --processes 2`, two members of the group, same records)",
            f"{_fmt(two['figure_median'])} events/s; {_run_cpu(n['normalizer_2'])} CPU/event",
            f"the same passthrough runs: {_fmt(two['anchor_median'])} records/s",
            _pct(two["ratio"]), "reported", "—",
        ), "normalizer_2", None))
    return rows


def _run_cpu(runs: list[dict]) -> str:
    values = [run["cpu_us_per_record"] for run in runs if run.get("cpu_us_per_record")]
    return f"{median(values):.1f} µs" if values else "—"


# The stages of benchmarks.cost_model: (name, what espstream does, its anchor, why the two differ).
COST_STAGES = [
    ("raw_decode", "raw record -> `RawWebhook` (known headers decoded, `received_at` parsed; request headers decoded only when a parser reads one)", "—",
     "no anchor: the gateway's record headers are the contract; a dict of five decoded headers and one `fromisoformat`"),
    ("parse", "body -> JSON value, `json_like_stdlib` (orjson where it reads as `json.loads`, else `json.loads`)", "`orjson.loads` alone",
     "the checks that keep parity: a digit scan for integers beyond 64 bits and a bracket count for deep nesting"),
    ("parse_stdlib", "`json.loads` of the same bodies (what anymail uses; the normalizer before orjson)", "`orjson.loads` alone",
     "the standard library's pure-C parser is several times slower than orjson; both give the same values here"),
    ("mapping", "Postmark's fields -> `TrackingEvent` (`normalizer.esps.postmark.esp_to_event`)", "django-anymail's own `esp_to_anymail_event` on the same parsed body",
     "the same mapping; espstream also checks every text field's type and UTF-8 (Avro's strings), which anymail leaves to chance"),
    ("normalize", "`normalize()`: parse + mapping + dedupe id (blake2b of the body) + lower-cased headers made lazily", "—",
     "the parse and mapping rows above, each beside its anchor, plus the dedupe id's hash"),
    ("encode", "`avro_body(event)`: the record dict with union branches named, `json.dumps(esp_event)`, fastavro's writer", "fastavro's bare `schemaless_writer` of the same record, already a dict",
     "the anchor is given the record; espstream builds it, and serializes `esp_event` (about 400 bytes of JSON) with `json.dumps`"),
    ("decode", "fastavro's reader + `record_to_event` (what a receiver gets: a `TrackingEvent`, `esp_event` parsed back)", "fastavro's bare `schemaless_reader` of the same bytes to a dict",
     "the `TrackingEvent` and `json.loads(esp_event)`"),
]


def _cost_rows(c: dict) -> list[tuple[str, str, bool | None]]:
    cpu, kafka = c["cpu"], c["kafka"]
    total = sum(cpu[name]["stage_us"] for name in ("raw_decode", "normalize", "encode"))
    return [(_row(
        "Cost model: CPU µs per event of the normalizer's own stages (raw decode + normalize + encode), in process",
        f"{total:.1f} µs",
        f"bare orjson parse {cpu['parse']['anchor_us']:.1f} µs + anymail's mapping {_us(cpu['mapping']['anchor_us'])} + "
        f"bare fastavro write {cpu['encode']['anchor_us']:.1f} µs; librdkafka produce {kafka['produce']['anchor_us']:.1f} µs "
        f"and consume {kafka['consume']['anchor_us']:.1f} µs per record",
        "—", "reported", "—",
    ), "costs", None)]


def _own_cost(c: dict) -> float:
    return sum(c["cpu"][name]["stage_us"] for name in ("raw_decode", "normalize", "encode"))


def _cost_bound(benchmarks: dict) -> float:
    """The most a normalizer process can reach of the passthrough: its Python thread does the passthrough's
    per-record work (the passthrough's wall time per record) plus its own stages, one after the other."""
    passthrough_us = 1e6 / median(run["per_second"] for run in benchmarks["normalizer"]["passthrough"])
    return passthrough_us / (passthrough_us + _own_cost(benchmarks["costs"]))


def _us(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} µs"


def _cost_detail(c: dict) -> list[str]:
    cpu, kafka = c["cpu"], c["kafka"]
    lines = [
        f"`benchmarks/cost_model.py`: {_fmt(c['records'])} Postmark records per stage, {c['rounds']} rounds, anchor "
        "and stage interleaved, medians; CPU of this process (`time.process_time`). Each stage is espstream's own "
        "function; each anchor is what that stage cannot do better than, on the same input.",
        "",
        "| stage | espstream | µs / event | anchor | µs / event | stage / anchor | why they differ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, what, anchor, why in COST_STAGES:
        row = cpu[name]
        ratio = f"{row['stage_us'] / row['anchor_us']:.2f}×" if row.get("anchor_us") else "—"
        lines.append(_row(name, what, f"{row['stage_us']:.1f}", anchor, _us(row.get("anchor_us")).removesuffix(" µs"), ratio, why))
    lines += [
        _row("produce", "`BatchWorker.produce` (librdkafka's `produce`, delivery reports for failures only)", "—",
             "librdkafka `produce` + `flush`, acks=all, idempotent, per record of 1 KB", f"{kafka['produce']['anchor_us']:.1f}", "—",
             "the normalizer's produce is this call; see the passthrough's CPU per record in the normalizer rows"),
        _row("consume", "`Consumer.consume` in batches of 500", "—", "librdkafka `consume` of the same records, value and headers read",
             f"{kafka['consume']['anchor_us']:.1f}", "—", "the same call"),
        "",
        "A normalizer process's Python thread does, per event, what the passthrough's does (consume, produce, the "
        "batch loop) plus raw decode + normalize + encode (the first rows), one after the other; librdkafka's own "
        "threads run beside it. Its share of the passthrough is therefore bounded by the passthrough's time per "
        "record over that time plus these stages (see \"What would move each missed goal\").",
    ]
    return lines


def _consumer_rows(c: dict) -> list[tuple[str, str, bool | None]]:
    s, p = c["summary"], c["plain_summary"]
    ok = s["ratio"] >= CONSUMER_GOAL and s["all_complete"]
    return [(_row(
        f"Consumer runner: events/s (`consumers.runner.TrackingConsumer`, what `espstream consume` runs, one no-op "
        f"receiver, {_fmt(c['events'])} pre-loaded events)",
        f"{_fmt(s['figure_median'])} events/s; {_consumer_cpu(c['runner'])} CPU/event",
        f"consume + framing + fastavro `schemaless_reader` to a dict, commit per batch: {_fmt(s['anchor_median'])} "
        f"events/s, {_consumer_cpu(c['fastavro'])} CPU/event. Beside it, consume + `EventDeserializer` to a "
        f"TrackingEvent: {_fmt(p['anchor_median'])} events/s, {_consumer_cpu(c['plain'])} CPU/event "
        f"(runner {_pct(p['ratio'])} of it)",
        _pct(s["ratio"]), f"≥ {_pct(CONSUMER_GOAL)}", _met(ok),
    ), "consumer", ok)]


def _consumer_cpu(runs: list[dict]) -> str:
    return f"{_fmt(median(run['cpu_us_per_event'] for run in runs), 1)} µs"


def _sent(summary: dict) -> float:
    """What the client sent per second: after the warm-up, or over the whole run when nothing after it went out."""
    return summary["achieved_rate"] or summary.get("achieved_rate_whole_run") or 0.0


def _offerable(e: dict, rate: float) -> dict | None:
    """The client's run against the bare endpoint at ``rate``."""
    return next((c for c in e["client_capacity"] if c["offered_rate"] == rate), None)


CPU_PROCESSES = ("gateway", "normalizer", "consumer", "broker", "registry", "load generator")


def _stack_bound(e: dict) -> tuple[float, dict[str, float]] | None:
    """Webhooks/s this machine's cores allow at the CPU per webhook of the highest offered rate's runs (medians)."""
    runs = [s for s in e["stacks"] if s.get("cpu_us_per_webhook")]
    if not runs:
        return None
    top = max(s["offered_rate"] for s in runs)
    per_process = {name: median(s["cpu_us_per_webhook"].get(name, 0) for s in runs if s["offered_rate"] == top)
                   for name in CPU_PROCESSES}
    return e.get("cores", 2) * 1e6 / sum(per_process.values()), per_process


def _latency_goal(rate: float) -> float:
    return LATENCY_P99_GOALS_MS.get(rate, LATENCY_P99_GOAL_MS if rate <= 1000 else max(LATENCY_P99_GOALS_MS.values()))


def _e2e_rows(e: dict) -> list[tuple[str, str, bool | None]]:
    rows = []
    rates = list(dict.fromkeys(stack["offered_rate"] for stack in e["stacks"]))
    for rate in rates:
        runs = [stack for stack in e["stacks"] if stack["offered_rate"] == rate]
        goal_ms = _latency_goal(rate)
        capacity = _offerable(e, rate)
        client_ok = capacity is not None and _sent(capacity) >= OFFERED_SHARE * rate
        figure = "; ".join(
            f"run {stack.get('round', index)}: sent {_fmt(_sent(stack))}/s, {_fmt(stack['arrived'])} of "
            f"{_fmt(stack['accepted'])} arrived, p50 {_fmt(stack['latency'].get('p50_ms'), 1)} ms, "
            f"p99 {_fmt(stack['latency'].get('p99_ms'), 1)} ms"
            for index, stack in enumerate(runs, 1)
        )
        anchor = (f"the same client against the bare endpoint: {_fmt(_sent(capacity) if capacity else None)}/s "
                  f"sent, HTTP p99 {_fmt(capacity['http_latency'].get('p99_ms') if capacity else None, 1)} ms")
        if all("hops" in stack for stack in runs):
            anchor += ("; two bare librdkafka hops through a fresh broker at the same rate (`benchmarks/hops_bench.py`), "
                       "each round: " + ", ".join(f"p50 {_fmt(stack['hops']['p50_ms'], 1)} ms, p99 "
                                                  f"{_fmt(stack['hops']['p99_ms'], 1)} ms" for stack in runs))
        if not client_ok:
            met, ok = f"{NOT_MEASURED}: this machine's client offers only {_fmt(_sent(capacity) if capacity else None)}/s", None
        else:
            took = [(stack["achieved_rate"] or 0) >= OFFERED_SHARE * rate and stack["missing"] == 0 for stack in runs]
            fast = [stack["latency"].get("p99_ms", math.inf) < goal_ms for stack in runs]
            ok = all(took) and all(fast)
            met = _met(ok) + f" ({sum(a and b for a, b in zip(took, fast))} of {len(runs)} runs)"
            if not all(took):
                met += f"; the stack took only {', '.join(_fmt(_sent(stack)) for stack in runs)}/s"
        rows.append((_row(
            f"End to end at {_fmt(rate)} webhooks/s offered (open loop), {len(runs)} consecutive runs: POST -> gateway "
            f"({_gateway_workers(e)}) -> normalizer -> `espstream consume` receiver",
            figure, anchor, "—", f"p99 < {goal_ms:.0f} ms in every run", met,
        ), "e2e", ok))
    for stack in e["stacks"]:
        if stack.get("round", 1) != 1:
            continue
        end = stack["memory_mb"]["end"]
        warm = stack["memory_mb"]["after_warmup"]
        rows.append((_row(
            f"Resident memory per process, end-to-end run at {_fmt(stack['offered_rate'])}/s (after warm-up -> end)",
            "; ".join(f"{name} {warm[name]:.0f} -> {end[name]:.0f} MiB" for name in end),
            "—", "—", "reported", "—",
        ), "memory", None))
    return rows


def _gateway_workers(e: dict) -> str:
    workers = e.get("gateway_workers")
    return f"{workers} workers" if workers else "a worker per core"


def _durable_rows(d: dict) -> list[tuple[str, str, bool | None]]:
    g = d["gateway_summary"]
    memory, durable = d["e2e_memory"], d["e2e_durable"]
    return [
        (_row(
            f"Gateway, {d['gateway_workers']} worker processes, on the durable embedded broker (`make run`'s: Tansu on "
            "SeaweedFS) vs the memory broker",
            f"{_fmt(g['figure_median'])} req/s; {sum(r['non_2xx'] for r in d['gateway_durable'])} non-2xx; "
            f"{_latency(d['gateway_durable'])}",
            f"memory broker: {_fmt(g['anchor_median'])} req/s; {_latency(d['gateway_memory'])}",
            _pct(g["ratio"]), "reported: what durability costs here", "—",
        ), "durable", None),
        (_row(
            f"End to end at {_fmt(d['rate'])} webhooks/s offered, on the durable embedded broker vs the memory broker",
            "; ".join(f"run {i}: p50 {_fmt(r['latency'].get('p50_ms'), 1)} ms, p99 {_fmt(r['latency'].get('p99_ms'), 1)} ms, "
                      f"{_fmt(r['arrived'])} of {_fmt(r['accepted'])} arrived" for i, r in enumerate(durable, 1)),
            "memory broker: " + "; ".join(f"run {i}: p50 {_fmt(r['latency'].get('p50_ms'), 1)} ms, p99 "
                                          f"{_fmt(r['latency'].get('p99_ms'), 1)} ms" for i, r in enumerate(memory, 1)),
            "—", "reported", "—",
        ), "durable", None),
    ]


def _load_rows(load: dict) -> list[tuple[str, str, bool | None]]:
    s, o = load["saturation"], load["outage"]
    saturation_ok = not s["status_other"] and s["socket_errors"] == 0 and s["rss_growth"] < RSS_GROWTH_GOAL
    outage_ok = not o["status_other"] and o["socket_errors"] == 0 and o["gateway_alive_after"]
    return [
        (_row(
            f"Gateway at saturation for {s['seconds']} s (wrk, {load['settings']['connections']} connections)",
            f"{_fmt(s['requests_per_second'])} req/s; 200: {_fmt(s['status_200'])}, 503: {_fmt(s['status_503'])}, "
            f"other: {_fmt(sum(s['status_other'].values()))}, socket errors: {s['socket_errors']}; RSS "
            f"{s['rss_mb_after_warmup']:.1f} -> {s['rss_mb_end']:.1f} MiB",
            f"RSS after {s['warmup_seconds']} s of warm-up", f"{s['rss_growth'] * 100:+.1f}%",
            f"only 200/503, RSS growth < {_pct(RSS_GROWTH_GOAL)}", _met(saturation_ok),
        ), "load", saturation_ok),
        (_row(
            f"Gateway under the same load with the broker frozen (SIGSTOP) for {load['settings']['outage_seconds']:.0f} s "
            f"of {o['seconds']} s",
            f"200: {_fmt(o['status_200'])}, 503: {_fmt(o['status_503'])}, other: {_fmt(sum(o['status_other'].values()))}, "
            f"socket errors: {o['socket_errors']}",
            "—", "—", "only 200 and 503", _met(outage_ok),
        ), "outage", outage_ok),
    ]


def _replay_rows(r: dict) -> list[tuple[str, str, bool | None]]:
    s = r["summary"]
    ok = s["ratio"] >= REPLAY_GOAL
    return [(_row(
        f"Replay: events/s ({_fmt(r['records'])} raw records, `benchmarks/replay_bench.py`)",
        f"{_fmt(s['figure_median'])} events/s",
        f"the live normalizer over as many records: {_fmt(s['anchor_median'])} events/s",
        _pct(s["ratio"]), f"≥ {_pct(REPLAY_GOAL)}", _met(ok),
    ), "replay", ok)]


def _export_rows(x: dict) -> list[tuple[str, str, bool | None]]:
    figure = x["summary"]["figure_median"]
    ok = figure is not None and figure >= EXPORT_GOAL
    # export_bench may measure an anchor of its own beside the export; shown when it does.
    anchor = _export_anchor(x)
    return [(_row(
        f"Export: events/s per process ({_fmt(x['events'])} events, `benchmarks/export_bench.py`)",
        f"{_fmt(figure)} events/s",
        f"a bare librdkafka read of the same records to the end of every partition (what the broker serves): "
        f"{_fmt(anchor)} events/s" if anchor else "—",
        _pct(figure / anchor) if anchor and figure else "—",
        f"≥ {_fmt(EXPORT_GOAL)} events/s", _met(ok),
    ), "export", ok)]


_CONSOLE_PAGES = {"lookup_message": "lookup by message id", "lookup_recipient": "lookup by recipient", "recent": "recent events"}


def _console_rows(c: dict) -> list[tuple[str, str, bool | None]]:
    pages = c["pages"]
    ok = c["worst_p95_ms"] < CONSOLE_GOAL_MS
    return [(_row(
        f"Console pages over {_fmt(c['events'])} events (`benchmarks/console_bench.py`): server time p95",
        "; ".join(f"{_CONSOLE_PAGES[name]} ({page['rows']} rows) {page['server_p95_ms']:.1f} ms" for name, page in pages.items()),
        "—", "—", f"< {CONSOLE_GOAL_MS:.0f} ms", _met(ok),
    ), "console", ok)]


def _console_detail(c: dict) -> list[str]:
    lines = [
        f"`espstream console` on a topic of {_fmt(c['events'])} pre-loaded events ({c['partitions']} partitions); its index "
        f"read them in {c['index_seconds']:.1f} s. Each page requested {next(iter(c['pages'].values()))['requests']} times "
        "after a warm-up; server time from the console's `Server-Timing` header. The lookups are answered from the "
        "in-memory index, the recent events by reading the newest records of each partition per request.",
        "",
        "| page | rows | server p50 | server p95 | server max | client p50 | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, page in c["pages"].items():
        lines.append(_row(_CONSOLE_PAGES[name], str(page["rows"]), f"{page['server_p50_ms']:.1f} ms",
                          f"{page['server_p95_ms']:.1f} ms", f"{page['server_max_ms']:.1f} ms", f"{page['wall_p50_ms']:.1f} ms",
                          _fmt(page["bytes"])))
    return lines


ROWS = {
    "costs": _cost_rows,
    "gateway": _gateway_rows,
    "normalizer": _normalizer_rows,
    "consumer": _consumer_rows,
    "e2e": _e2e_rows,
    "durable": _durable_rows,
    "load": _load_rows,
    "replay": _replay_rows,
    "export": _export_rows,
    "console": _console_rows,
}
UNMEASURED_ROWS = {
    "costs": ["Cost model: CPU per event of each stage beside its anchor"],
    "gateway": ["Gateway, one process, vs bare FastAPI endpoint", "Gateway, a worker per core, vs django-anymail's view under gunicorn"],
    "normalizer": ["Normalizer vs librdkafka passthrough"],
    "consumer": ["Consumer runner vs consume + fastavro schemaless_reader"],
    "e2e": ["End-to-end latency"],
    "durable": ["Gateway on the durable embedded broker vs the memory broker", "End to end on the durable embedded broker"],
    "load": ["Gateway at saturation", "Gateway through a broker outage"],
    "replay": ["Replay vs the live normalizer"],
    "export": ["Export events/s per process"],
    "console": ["Console pages' server time over 100k events"],
}

# What would move each goal when it is missed. Each names the cause the measurements point at.
MOVES = {
    "gateway_bare": lambda benchmarks: _gateway_bare_move(benchmarks["gateway"]),
    "gateway_anymail": lambda benchmarks: _gateway_anymail_move(benchmarks["gateway"]),
    "normalizer": lambda benchmarks: (
        "Normalizer, one process: "
        + (
            "its own stages cost {own:.0f} µs of CPU per event in process (cost model: raw decode, normalize, encode), "
            "on the one thread that also does the passthrough's work ({passthrough_us:.1f} µs of wall time per record "
            "in the passthrough runs), so it cannot run faster than about {bound:.0%} of the passthrough, whatever "
            "its loop does; 40% would need its own stages under 1.5 times the passthrough's time per record. The largest shares are fastavro's writer (its bare "
            "call on a ready dict, {avro:.0f} µs, is the floor of the encode stage), the mapping (anymail's own is "
            "{anymail}) and the JSON text of `esp_event`. More processes (`--processes N`) use more cores; the "
            "two-process row shows what two give on a machine whose two cores also run the broker. ".format(
                own=_own_cost(benchmarks["costs"]),
                passthrough_us=1e6 / median(run["per_second"] for run in benchmarks["normalizer"]["passthrough"]),
                bound=_cost_bound(benchmarks),
                avro=benchmarks["costs"]["cpu"]["encode"]["anchor_us"],
                anymail=_us(benchmarks["costs"]["cpu"]["mapping"]["anchor_us"]),
            )
            if "costs" in benchmarks else "run the cost model (`--only costs`) for where its time goes. "
        )
    ),
    "consumer": lambda benchmarks: _consumer_move(benchmarks["consumer"]),
    "e2e": lambda benchmarks: (
        "End to end: "
        + (
            "at the highest offered rate every webhook cost, in CPU, {parts}: {total:.0f} µs in all, so this machine's "
            "{cores} cores, shared by all of them, take at most about {bound:,.0f} webhooks/s; a rate above that is "
            "queueing, whatever the latency goal. ".format(
                parts=", ".join(f"{name} {us:.0f} µs" for name, us in _stack_bound(benchmarks["e2e"])[1].items()),
                total=sum(_stack_bound(benchmarks["e2e"])[1].values()),
                cores=benchmarks["e2e"].get("cores", 2),
                bound=_stack_bound(benchmarks["e2e"])[0],
            )
            if _stack_bound(benchmarks["e2e"]) else ""
        )
        + _hops_move(benchmarks["e2e"])
        + "At a rate the stack takes, the gateway's own answer (the HTTP p99 column: its wait for the broker's "
        "acknowledgement, on cores shared with every other process) is one share of the latency; the consuming hops "
        f"(normalizer, consumer) each wait for a fetch (`fetch.wait.max.ms`, {FETCH_WAIT_MS} ms in espstream) and the "
        f"normalizer for its batch to fill (`ESPSTREAM_NORMALIZER_BATCH_WAIT_MS`, {BATCH_WAIT_MS} ms)."
    ),
    "load": (
        "Gateway at saturation: an answer other than 200/503 or a socket error is a bug to chase in the gateway's "
        "log; memory growth over 10% calls for a tracemalloc comparison between warm-up and end."
    ),
    "outage": (
        "Broker outage: any answer other than 200/503 or a dropped connection while the broker is frozen is a bug; "
        "the gateway log (in the log directory) says which request failed how."
    ),
    "replay": "Replay: it runs the normalizer's code path (normalizer.records); what slows it beyond that is its own "
              "reading and writing, to be profiled like the normalizer above.",
    "export": lambda benchmarks: (
        "Export: "
        + (
            f"a bare read of the same records ran at {_fmt(_export_anchor(benchmarks['export']))} events/s, under the "
            "goal itself: on this machine the embedded broker serves records slower than the goal asks, so no "
            "exporter can reach it here; it needs a faster broker (or more cores) before the export's own work counts. "
            if (_export_anchor(benchmarks["export"]) or math.inf) < EXPORT_GOAL else ""
        )
        + "Beyond the broker, the export's own time per event (decoding, the Avro file writer) is what to profile."
    ),
    "console": (
        "Console: a lookup is a dict read of the in-memory index plus the template's rows (the busy recipient's page "
        "has hundreds); the recent-events page reads the newest records of each partition per request, so its time "
        "is the broker's answer to ends and fetches first (the details table splits pages; py-spy on the console "
        "process shows which)."
    ),
}


def _export_anchor(export: dict) -> float | None:
    return median_of([run.get("anchor_per_second") for run in export["runs"]])


def _hops_move(e: dict) -> str:
    """The latency floor the anchor measured at the lowest rate: the broker's and librdkafka's two hops."""
    rate = min((stack["offered_rate"] for stack in e["stacks"]), default=None)
    runs = [stack for stack in e["stacks"] if stack["offered_rate"] == rate and "hops" in stack]
    if not runs:
        return ""
    goal = _latency_goal(rate)
    hops = [stack["hops"]["p99_ms"] for stack in runs]
    stack_p99 = [stack["latency"].get("p99_ms", math.nan) for stack in runs]
    over = sum(p99 >= goal for p99 in hops)
    return (
        f"At {_fmt(rate)}/s, two bare librdkafka hops through a fresh broker (a relay batching as the normalizer does, "
        f"a sink reading as the runner does, no HTTP, parsing, Avro or receivers) had a p99 of "
        f"{', '.join(f'{p99:.0f}' for p99 in hops)} ms in the same rounds, against the stack's "
        f"{', '.join(f'{p99:.0f}' for p99 in stack_p99)} ms: the broker and the client library alone take "
        + (f"the whole {goal:.0f} ms budget or more in {over} of {len(runs)} rounds, so the goal is out of reach on this "
           "broker in those. " if over else f"up to {max(hops):.0f} ms of the {goal:.0f} ms budget. ")
        + _cpu_budget(runs, e.get("cores", 2))
    )


def _cpu_budget(runs: list[dict], cores: int) -> str:
    """How busy the machine's cores were in the stack's rounds at one rate, and who used them."""
    rate = runs[0]["offered_rate"]
    cpu = {name: median(run["cpu_us_per_webhook"][name] for run in runs) for name in runs[0]["cpu_us_per_webhook"]}
    total = sum(cpu.values())
    ours = sum(cpu[name] for name in ("gateway", "normalizer", "consumer", "registry") if name in cpu)
    hops_broker = [run["hops"]["broker_cpu_us_per_record"] for run in runs if "broker_cpu_us_per_record" in run["hops"]]
    return (
        f"The cores, in the same rounds (medians): the stack used {total:,.0f} µs of CPU per webhook, "
        f"{_pct(total * rate / 1e6 / cores)} of the {cores} cores at {_fmt(rate)}/s: the broker {cpu.get('broker', math.nan):,.0f} µs"
        + (f" (in the bare hops {median(hops_broker):,.0f} µs per record: one producing client, no headers)"
           if hops_broker else "")
        + f", the load generator {cpu.get('load generator', math.nan):,.0f} µs, espstream's own processes {ours:,.0f} µs "
        f"(the gateway {cpu.get('gateway', math.nan):,.0f}). Each hop waits for a core behind the others: the stack's "
        "p99 above the hops' is that queueing. The broker's share is Tansu's: version 0.6.0 answers every fetch only "
        "after the whole `fetch.wait.max.ms` (its fetch loop sleeps out the wait even when it found records), so each "
        f"consumer costs it a fetch of every partition every {FETCH_WAIT_MS} ms, busy or idle; a longer wait costs it less and each "
        "hop more latency (benchmarks/notes.md). "
    )


def _consumer_move(c: dict) -> str:
    s, p = c["summary"], c["plain_summary"]
    plain_of_anchor = p["anchor_median"] / s["anchor_median"]
    cpu = {name: median(run["cpu_us_per_event"] for run in c[name]) for name in ("fastavro", "plain", "runner")}
    return (
        "Consumer runner vs the fastavro loop: the anchor stops at a dict, while a receiver gets a TrackingEvent "
        "(`record_to_event`: `esp_event` parsed back with `json.loads`, the dataclasses), as anymail's receivers get "
        "theirs. Measured in the same rounds, the loop that adds only that to the anchor (consume, decode to a "
        f"TrackingEvent, commit per batch) reaches {_pct(plain_of_anchor)} of the anchor, "
        f"{cpu['plain']:.1f} against {cpu['fastavro']:.1f} µs of CPU per event: the ceiling of any runner that hands "
        "its receivers the same event"
        + (f", so {_pct(CONSUMER_GOAL)} is out of reach without building the event lazily (`esp_event` parsed on "
           "first use), a change of what receivers get" if plain_of_anchor < CONSUMER_GOAL else "")
        + f". The runner reaches {_pct(p['ratio'])} of that loop; its {cpu['runner'] - cpu['plain']:.1f} µs per event "
        "more are its bookkeeping, per event: marking it read and finished for the commit, the receivers called with "
        "the request id set, a Prometheus counter and two histograms (the handling time and the age since the "
        "gateway's receipt). The decoder reads the framing itself and resolves each schema id once; the runner "
        "(concurrency 1) handles each event on the polling thread as it decodes it, batches read with `consume(n, 0)`."
    )


def _gateway_anymail_move(g: dict) -> str:
    text = (
        "Gateway workers vs anymail: both servers use both cores, and share them with wrk, and the gateway also with "
        "its broker; compare the CPU per request columns, which do not depend on how many cores a server uses. With "
        "a worker per core the gateway's req/s is bounded by two cores over its CPU per request plus the broker's "
        "share of those cores, anymail's by two cores over its own, so 2× anymail needs the gateway's CPU per "
        "request (the broker's added) under half of anymail's."
    )
    if "bare_acked" in g:
        bare, acked, anymail, workers = (median(run["server_cpu_us_per_request"] for run in g[name])
                                         for name in ("bare", "bare_acked", "anymail", "gateway_workers"))
        text += (
            f" Measured in the same rounds, server CPU per request: anymail {anymail:,.0f} µs, the gateway's workers "
            f"{workers:,.0f} µs ({anymail / workers:.2f}× less), the bare endpoint answering after the broker's ack "
            f"{acked:,.0f} µs, the bare endpoint that writes nothing {bare:,.0f} µs. 2× would need {anymail / 2:,.0f} µs "
            "or less, before the broker's CPU"
            + (": less than the bare endpoint alone costs, FastAPI and uvicorn with the gateway's options and no work "
               "at all, so no endpoint on this framework reaches it here; the gateway's own work already costs no more "
               "than the acked anchor's." if anymail / 2 < bare else
               ": less than the bare endpoint answering after the broker's ack costs, which does nothing else, so no "
               "endpoint that answers 200 only after the ack reaches it on this machine; the gateway's workers cost "
               f"{workers - acked:+,.0f} µs per request against that anchor." if anymail / 2 < acked else
               f"; the gateway's workers are {workers - anymail / 2:,.0f} µs per request over it, and "
               f"{workers - acked:+,.0f} µs against the acked anchor.")
        )
        if all("broker_cpu_us_per_request" in run for name in ("bare_acked", "gateway_workers") for run in g[name]):
            acked_broker, workers_broker = (median(run["broker_cpu_us_per_request"] for run in g[name])
                                            for name in ("bare_acked", "gateway_workers"))
            text += (
                f" The broker's CPU per request comes on top, on the same cores: {acked_broker:,.0f} µs behind the acked "
                f"anchor, {workers_broker:,.0f} µs behind the gateway's workers. So the acked anchor costs the machine "
                f"{acked + acked_broker:,.0f} µs per request before wrk's share, the gateway's workers "
                f"{workers + workers_broker:,.0f} µs, against {anymail / 2:,.0f} µs for 2×"
                + (": no endpoint that answers after the broker's ack gets there with this broker on these cores."
                   if acked + acked_broker > anymail / 2 else ".")
            )
    return text


def _gateway_bare_move(g: dict) -> str:
    s = g["summary"]
    text = (
        "One gateway process vs the bare endpoint: the bare endpoint writes nothing, while every 200 of the gateway "
        "waits for the broker's acknowledgement, and the broker runs on the same two cores as the server and wrk. "
    )
    if "acked_of_bare" in s:
        acked, of_acked = s["acked_of_bare"], s["of_acked"]
        text += (
            f"Measured in the same rounds: the bare endpoint made to answer after the broker's ack, and nothing else, "
            f"takes {_fmt(acked['figure_median'])} req/s, {_pct(acked['ratio'])} of the bare endpoint "
            f"(rounds: {', '.join(_pct(r) for r in acked['round_ratios'])}); its server CPU per request is "
            f"{_cpu(g['bare_acked'])} against {_cpu(g['bare'])}. That is the limit of any endpoint that answers after "
            f"the ack on this machine: the broker's share of the cores and librdkafka's produce and callback, not "
            f"the gateway's code. "
            f"{'So 80% of bare is out of reach for any such endpoint here. ' if acked['ratio'] < GATEWAY_GOAL else ''}"
            f"The gateway reaches {_pct(of_acked['ratio'])} of that acked endpoint, with {_cpu(g['gateway'])} of "
            "server CPU per request: the difference is its own work per request (basic auth, the body read under "
            "its deadline, the record headers, the request id, the metrics), on the event loop's one thread."
        )
    else:
        text += (
            "The gateway's own work per request runs on the event loop's one thread: reading the body under its "
            "deadline, basic auth, the record headers, the request id and the metrics."
        )
    return text


# Details sections.

GATEWAY_SERVERS = ("bare", "bare_acked", "gateway", "gateway_workers", "anymail")


def _gateway_detail(g: dict) -> list[str]:
    gunicorn = g["settings"]["gunicorn"]
    workers = g["settings"]["gateway_workers"]
    lines = [
        f"wrk {g['settings']['threads']} thread, {g['settings']['connections']} connections, "
        f"{g['settings']['warmup_seconds']} s warm-up then {g['settings']['duration_seconds']} s measured, POST of a "
        f"{g['body_bytes']}-byte Postmark bounce with basic auth. Each round runs, in turn, the bare endpoint (one "
        "process), the bare endpoint answering after a fresh broker's ack of each body (one process, "
        "`benchmarks/bare_app.py --acked`), the gateway in one process, the gateway with {workers} worker processes (`--workers {workers}`, "
        "one per core, each with its own Kafka producer, on one port) and anymail, on the same cores. The gateway runs "
        "against a fresh embedded broker per run and answers only after the broker acknowledged (acks=all). Round "
        "ratios, one gateway process / bare: " + ", ".join(_pct(r) for r in g["summary"]["round_ratios"])
        + f"; {workers} gateway workers / anymail: "
        + ", ".join(f"{r:.2f}×" for r in g["anymail_summary"]["round_ratios"])
        + f". Non-2xx over all measured gateway runs: {g['summary']['non_2xx']} (one process), "
        f"{g['anymail_summary']['non_2xx']} ({workers} workers).",
        "",
        f"Here anymail reaches {_pct(g['anymail_summary']['anchor_median'] / g['summary']['anchor_median'])} of the bare "
        "endpoint's req/s (measured elsewhere: 3.8k vs 16.1k req/s, 24%); per request the gateway needs "
        f"{_cpu_ratio(g, 'gateway'):.2f}× less server CPU than anymail in one process, {_cpu_ratio(g):.2f}× less with "
        f"{workers} workers. Server CPU is every process of the server (the gateway's parent and workers, gunicorn's "
        "arbiter and workers), user + system; the broker's and wrk's are not counted.",
        "",
        f"anymail: `benchmarks/anymail_site` (Django {_django_version()}, no middleware, DEBUG off, anymail's "
        "WEBHOOK_SECRET basic auth, a no-op receiver on `anymail.signals.tracking`) under gunicorn with "
        f"{gunicorn['workers']} `{gunicorn['worker_class']}` workers of {gunicorn['threads']} threads: one process per "
        "core for a CPU-bound view, threads so that wrk's kept-alive connections stay open (sync workers close every "
        "connection). It was the best of the configurations tried on this machine (sync x2, sync x4, gthread 1x8, "
        "gthread 2x4), so the anchor is anymail at its best here. All servers see the same two cores and share them "
        "with wrk (and the gateway with its broker); server CPU per request is the figure that does not depend on how "
        "many cores a server can use.",
        "",
        "| round | server | req/s | non-2xx | socket errors | p50 | p99 | max | server CPU / request | records on raw topic / 200s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"bare_acked": "bare, answered after the ack", "gateway": "gateway, 1 process", "gateway_workers": f"gateway, {workers} workers"}
    servers = [name for name in GATEWAY_SERVERS if name in g]  # results of earlier runs lack bare_acked
    for index, rounds in enumerate(zip(*(g[name] for name in servers)), 1):
        for name, run in zip(servers, rounds):
            stored = f"{_fmt(run['raw_records'])} / {_fmt(run['answered_200'])}" if "raw_records" in run else "—"
            lines.append(_row(
                str(index), labels.get(name, name), _fmt(run["requests_per_second"]), str(run["non_2xx"]),
                str(run["socket_errors"]), _ms(run["latency_p50_us"]), _ms(run["latency_p99_us"]),
                _ms(run["latency_max_us"]), f"{_fmt(run['server_cpu_us_per_request'])} µs", stored,
            ))
    return lines


def _django_version() -> str:
    try:
        import django

        return django.get_version()
    except ImportError:
        return "?"


def _normalizer_detail(n: dict) -> list[str]:
    lines = [
        f"Each run: a fresh embedded broker, {_fmt(n['records'])} raw records pre-loaded with the gateway's "
        f"record headers ({n['settings']['partitions']} partitions), then the timed loop in a process of its own "
        "(two processes for the two-member run, started together), "
        f"batch size {n['settings']['batch_size']}. Time runs from the first batch consumed to the commit of the "
        "last record; the group join before it is not counted. The output topic is read back afterwards "
        "(every record must be there, no dead letters). Round ratios, one process: "
        + ", ".join(_pct(r) for r in n["summary"]["round_ratios"]) + ".",
        "",
        "| round | loop | records/s | seconds | process CPU / record | records out | dead letters | load avg before |",
        "|---|---|---|---|---|---|---|---|",
    ]
    loops = [("passthrough", "passthrough"), ("normalizer", "normalizer, 1 process"), ("normalizer_2", "normalizer, 2 processes")]
    for index in range(len(n["passthrough"])):
        for key, name in loops:
            if index >= len(n.get(key, [])):
                continue
            run = n[key][index]
            lines.append(_row(
                str(index + 1), name, _fmt(run["per_second"]), f"{run['seconds']:.2f}", f"{run['cpu_us_per_record']:.1f} µs",
                _fmt(run["output_records"]), str(run["dead_letters"]), f"{run['load_average_before']:.2f}",
            ))
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
        lines.append(_row(row["stage"], f"{row['us_per_event']:.1f}", _pct(row["share"]), row["what"]))
    return lines


def _consumer_detail(c: dict) -> list[str]:
    lines = [
        f"One fresh broker and registry; {_fmt(c['events'])} normalized events pre-loaded once (Postmark webhooks "
        f"normalized and Avro-encoded as the normalizer does, {c['preload_seconds']:.0f} s), then each run reads all "
        "of them as a consumer group of its own, in a process of its own (`benchmarks/consumer_workers.py`), the "
        "three loops interleaved in each round. Time runs from the first event that reached the receiver (runner) "
        "or was decoded (fastavro, plain loop) to the last; the group join is not counted. The fastavro loop is the "
        "anchor: `consume(500)`, the Confluent framing read, `schemaless_reader` with the writer schema parsed once, "
        "to a dict, a synchronous commit per batch. The plain loop is the same with `EventDeserializer` (to a "
        "TrackingEvent). The runner runs with its defaults (concurrency 1, read-ahead 500, dedupe window off). "
        "Round ratios (runner / fastavro): " + ", ".join(_pct(r) for r in c["summary"]["round_ratios"]) + ".",
        "",
        "| round | loop | events/s | seconds | process CPU / event | load avg before |",
        "|---|---|---|---|---|---|",
    ]
    for index, runs in enumerate(zip(c["fastavro"], c["plain"], c["runner"]), 1):
        for name, run in zip(("fastavro", "plain", "runner"), runs):
            lines.append(_row(
                str(index), name, _fmt(run["per_second"]), _fmt(run["seconds"], 2),
                f"{_fmt(run['cpu_us_per_event'], 1)} µs", f"{run['load_average_before']:.2f}",
            ))
    return lines


def _e2e_detail(e: dict) -> list[str]:
    lines = [
        f"`benchmarks/openloop.py` sends each rate for {e['warmup_seconds']:.0f} s of warm-up plus {e['seconds']:.0f} s "
        "measured, request i due at start + i/rate on up to 128 kept-alive connections; every body has its own "
        "Postmark MessageID. The receiver (`benchmarks/e2e_receiver.py`, run by `espstream consume`) writes each "
        "event's arrival time; latency = arrival − send time on one monotonic clock (the due time when the client "
        "was late, wrk2's correction for coordinated omission). Only requests due after the warm-up count. A fresh "
        "stack per rate: broker, registry, gateway, normalizer, consumer, one webhook through it before the clock "
        "starts (group joins, schema registration). wrk2 is not packaged for Debian, so the client is Python "
        "(uvloop, raw HTTP/1.1), on the same two cores as the whole stack.",
        "",
        "What the client can offer here, against the bare endpoint:",
        "",
        "| offered | sent after warm-up | sent over the run | unsent | client late p99 | HTTP p50 | HTTP p99 | statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in e["client_capacity"]:
        lines.append(_row(
            f"{_fmt(c['offered_rate'])}/s", f"{_fmt(c['achieved_rate'])}/s",
            f"{_fmt(c.get('achieved_rate_whole_run'))}/s", _fmt(c.get("unsent", 0)),
            f"{_fmt(c['client_late'].get('p99_ms'), 1)} ms", f"{_fmt(c['http_latency'].get('p50_ms'), 1)} ms",
            f"{_fmt(c['http_latency'].get('p99_ms'), 1)} ms", json.dumps(c["statuses"]),
        ))
    lines += [
        "",
        "The full stack:",
        "",
        "| run | offered | sent after warm-up | sent over the run | unsent | statuses | arrived / accepted | p50 | p95 | p99 | max | HTTP p99 | client late p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in e["stacks"]:
        lat = s["latency"]
        lines.append(_row(
            str(s.get("round", 1)), f"{_fmt(s['offered_rate'])}/s", f"{_fmt(s['achieved_rate'])}/s",
            f"{_fmt(s.get('achieved_rate_whole_run'))}/s ({_fmt(s.get('sent_whole_run'))})", _fmt(s.get("unsent", 0)),
            json.dumps(s["statuses"]), f"{_fmt(s['arrived'])} / {_fmt(s['accepted'])}",
            *(f"{_fmt(lat.get(k), 1)} ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            f"{_fmt(s['http_latency'].get('p99_ms'), 1)} ms", f"{_fmt(s['client_late'].get('p99_ms'), 1)} ms",
        ))
    lines += [
        "",
        "Resident set size (psutil), MiB: idle (after the priming webhook), after the warm-up, at the end (every "
        "accepted webhook arrived, or the wait gave up):",
        "",
        "| rate | process | idle | after warm-up | end |",
        "|---|---|---|---|---|",
    ]
    for s in e["stacks"]:
        if s.get("round", 1) != 1:
            continue
        memory = s["memory_mb"]
        for name in memory["end"]:
            lines.append(_row(f"{_fmt(s['offered_rate'])}/s", name,
                              *(f"{memory[phase][name]:.1f}" for phase in ("idle", "after_warmup", "end"))))
    lines += ["", "The broker is memory-only: its RSS grows with every record it keeps."]
    lines += [
        "",
        "CPU per webhook, by process (user + system CPU seconds over the run, every thread and child, divided by the "
        "webhooks answered 200), and the rate that many µs allow on this machine's cores:",
        "",
        "| run | offered | " + " | ".join(CPU_PROCESSES) + " | all | cores / all |",
        "|" + "---|" * (len(CPU_PROCESSES) + 4),
    ]
    for s in e["stacks"]:
        cpu = s.get("cpu_us_per_webhook")
        if not cpu:
            continue
        total = sum(cpu.get(name, 0) for name in CPU_PROCESSES)
        lines.append(_row(str(s.get("round", 1)), f"{_fmt(s['offered_rate'])}/s",
                          *(f"{cpu.get(name, 0):.0f} µs" for name in CPU_PROCESSES), f"{total:.0f} µs",
                          f"{_fmt(e.get('cores', 2) * 1e6 / total)}/s"))
    return lines


def _load_detail(load: dict) -> list[str]:
    s, o, settings = load["saturation"], load["outage"], load["settings"]
    samples = ", ".join(f"{t:.0f} s: {mb:.1f}" for t, mb in s["rss_samples"])
    return [
        f"wrk {settings['threads']} thread, {settings['connections']} connections, every response's status counted "
        f"by a Lua hook. Saturation: a fresh broker and gateway, {s['warmup_seconds']} s of warm-up, then "
        f"{s['seconds']} s flat out, the gateway's RSS sampled every {settings['sample_seconds']:.0f} s. "
        f"p50 {_ms(s['latency_p50_us'])}, p99 {_ms(s['latency_p99_us'])}, max {_ms(s['latency_max_us'])}; "
        f"records on the raw topic {_fmt(s['raw_records'])} for {_fmt(s['answered_200'])} answered 200 (warm-up "
        "included; a request cut off at the end of a wrk run can add a record it never saw answered). "
        f"RSS (MiB) over time: {samples}; max {s['rss_mb_max']:.1f}.",
        "",
        f"Outage: a fresh broker and gateway, 5 s of warm-up, then {o['seconds']} s of the same load; the broker was "
        f"frozen (SIGSTOP) at {o.get('stopped_at', 0):.1f} s and resumed (SIGCONT) at {o.get('continued_at', 0):.1f} s. "
        f"200: {_fmt(o['status_200'])}, 503: {_fmt(o['status_503'])}, other statuses: {o['status_other'] or 'none'}, "
        f"socket errors: {o['socket_errors']} (timeouts {o['timeouts']}); p99 {_ms(o['latency_p99_us'])}, max "
        f"{_ms(o['latency_max_us'])}; gateway still running after: {o['gateway_alive_after']}. While the broker is "
        "frozen each request waits the gateway's ack timeout before its 503, so with 64 connections the 503s "
        "number about 64 per ack timeout of outage. Correctness through outages (no accepted webhook lost) is "
        "the fault suite's (`make faults`); this is the load figure.",
    ]


def _durable_detail(d: dict) -> list[str]:
    lines = [
        "Each round: the gateway benchmark (the same wrk load as above) with a worker per core, then the end-to-end "
        f"run at {_fmt(d['rate'])}/s ({d['seconds']:.0f} s measured), first on a memory broker, then on a durable one "
        "(a fresh data folder each time). On the durable broker Tansu acknowledges a produce once SeaweedFS has "
        "written the object to local disk, so the gateway's answer waits for that write; SeaweedFS's own CPU is "
        "the storage column.",
        "",
        "| round | broker | gateway req/s | gateway HTTP p99 | e2e p50 | e2e p99 | arrived / accepted | broker CPU/webhook | storage CPU/webhook |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, rounds in enumerate(zip(d["gateway_memory"], d["e2e_memory"], d["gateway_durable"], d["e2e_durable"]), 1):
        for kind, (gateway, e2e) in (("memory", rounds[:2]), ("durable", rounds[2:])):
            cpu = e2e.get("cpu_us_per_webhook", {})
            lines.append(_row(
                str(index), kind, _fmt(gateway["requests_per_second"]), _ms(gateway["latency_p99_us"]),
                f"{_fmt(e2e['latency'].get('p50_ms'), 1)} ms", f"{_fmt(e2e['latency'].get('p99_ms'), 1)} ms",
                f"{_fmt(e2e['arrived'])} / {_fmt(e2e['accepted'])}", f"{cpu.get('broker', 0):.0f} µs",
                f"{cpu['storage']:.0f} µs" if "storage" in cpu else "—",
            ))
    lines += [
        "",
        "A production cluster instead: Apache Kafka with `acks=all` and `min.insync.replicas=2` acknowledges a produce "
        "once the partition's in-sync replicas have the batch, at least two brokers (Kafka's documentation, "
        "Replication and the producer's `acks`); it does not fsync each write (the design section: durability comes "
        "from replication, flushing is left to the operating system unless `log.flush.interval.*` is set). So what a "
        "webhook's acknowledgement costs there is a follower's fetch of the batch over the cluster's network, not a "
        "disk write: within one data center typically a few milliseconds more than `acks=1`, and the throughput per "
        "broker is bounded by network and replication, not by a local object store as here.",
    ]
    return lines


def _replay_detail(r: dict) -> list[str]:
    lines = [
        "Each round: the live normalizer (`benchmarks/stream_workers.py`) over fresh pre-loaded raw records, then "
        "`benchmarks/replay_bench.measure` on a fresh broker and registry over as many. Round ratios: "
        + ", ".join(_pct(x) for x in r["summary"]["round_ratios"]) + ".",
        "",
        "| round | normalizer events/s | replay events/s | replay result |",
        "|---|---|---|---|",
    ]
    for index, (live, replay) in enumerate(zip(r["normalizer"], r["replay"]), 1):
        extra = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in replay.items()
                 if isinstance(v, (int, float, str, bool))}
        lines.append(_row(str(index), _fmt(live["per_second"]), _fmt(per_second(replay)), f"`{json.dumps(extra, default=str)}`"))
    return lines


def _export_detail(x: dict) -> list[str]:
    lines = [
        "Each round: `benchmarks/export_bench.measure` on a fresh broker and registry.",
        "",
        "| round | events/s | result |",
        "|---|---|---|",
    ]
    for index, run in enumerate(x["runs"], 1):
        extra = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in run.items() if isinstance(v, (int, float, str, bool))}
        lines.append(_row(str(index), _fmt(per_second(run)), f"`{json.dumps(extra, default=str)}`"))
    return lines


DETAILS = [
    ("costs", "Cost model: each stage beside its anchor", _cost_detail),
    ("gateway", "Gateway details", _gateway_detail),
    ("normalizer", "Normalizer details", _normalizer_detail),
    ("profile", "Where the normalizer's time goes", _profile_detail),
    ("consumer", "Consumer runner details", _consumer_detail),
    ("e2e", "End-to-end latency and memory details", _e2e_detail),
    ("durable", "Durable embedded broker details", _durable_detail),
    ("load", "Load details", _load_detail),
    ("replay", "Replay details", _replay_detail),
    ("export", "Export details", _export_detail),
    ("console", "Console details", _console_detail),
]


def _machine(machine: dict) -> list[str]:
    return [f"- {name}: {value}" for name, value in machine.items()]


def _elapsed(benchmarks: dict) -> str:
    return ", ".join(f"{name} {result.get('elapsed_seconds', 0) / 60:.1f} min" for name, result in benchmarks.items())


def write(results: dict) -> None:
    RESULTS_JSON.write_text(json.dumps(results, indent=2, default=str) + "\n")
    BENCHMARKS_MD.write_text(render(results))


def render(results: dict) -> str:
    benchmarks, machine = results["benchmarks"], results["machine"]
    table, missed = [], []
    for name, rows in ROWS.items():
        if name not in benchmarks:
            reason = results.get("skipped", {}).get(name, "not run")
            table += [_row(what, "—", "—", "—", "—", f"{NOT_MEASURED} ({reason})") for what in UNMEASURED_ROWS[name]]
            continue
        for line, goal, ok in rows(benchmarks[name]):
            table.append(line)
            if ok is False and goal not in missed:
                missed.append(goal)
    md = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`.venv/bin/python -m benchmarks.run`); every run rewrites this file and "
        "`benchmarks/results.json`. Each figure is measured beside its anchor, in the same run on the same "
        "machine, rounds interleaved (anchor, figure, anchor, figure, ...); the table gives the medians. "
        "Every benchmark starts its own fresh embedded broker(s). These are measurements, not tests: nothing "
        "fails when a goal is missed, and a goal is marked met only when it was measured in this run.",
        "",
        "| what | figure | anchor | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
        *table,
    ]
    if missed:
        moves = [MOVES[goal](benchmarks) if callable(MOVES[goal]) else MOVES[goal] for goal in missed]
        md += ["", "## What would move each missed goal", ""] + [f"- {move}" for move in moves]
    md += ["", "## Machine", ""] + _machine(machine)
    md += [
        "",
        "## How to reproduce",
        "",
        "```",
        f"make bench      # everything; this run took {machine['seconds'] / 60:.0f} min ({_elapsed(benchmarks)})",
        ".venv/bin/python -m benchmarks.run --only gateway --rounds 1",
        ".venv/bin/python -m benchmarks.run --only consumer --events 20000 --rounds 1",
        ".venv/bin/python -m benchmarks.run --only e2e --rates 1000 --e2e-seconds 5",
        "```",
        "",
        "`--only NAME` (repeatable; " + ", ".join(name for name, _, _ in DETAILS) + ") prints the figures as JSON and "
        "leaves this file alone. Needs `wrk` (installed with apt-get when missing and running as root). Every "
        "process (Tansu broker, schema registry, gateway, normalizer, consumer, bare app, gunicorn, workers) is "
        "started on 127.0.0.1 and stopped by the script; logs go to a temporary directory printed at the start. "
        "Other work on the machine skews the figures: the load average is recorded at the start, the end and "
        "before each stream run.",
    ]
    for name, title, detail in DETAILS:
        if name in benchmarks:
            md += ["", f"## {title}", ""] + detail(benchmarks[name])
    if NOTES_MD.exists():
        md += ["", NOTES_MD.read_text().rstrip()]
    return "\n".join(md) + "\n"
