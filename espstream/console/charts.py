"""The rates page's charts as SVG shapes, computed here and drawn by the template (no JavaScript).

Events per ESP per time bucket as stacked bars, and the share of ``unknown``
event types per bucket: what a changed ESP payload looks like first.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# Bucket width by the hours shown.
BUCKET_MINUTES = {1: 5, 3: 10, 6: 15, 24: 60}
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 760, 220, 48, 28, 10


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass
class Chart:
    """An SVG's shapes: bars, the y axis' grid lines and labels, x labels, a legend."""

    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    grid: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, label)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (color, label)
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM


@dataclass
class Rates:
    """Counts per ESP per bucket from ``start``, and what the page's table and charts show of them."""

    start: datetime
    bucket: timedelta
    buckets: int
    counts: dict[str, list[int]]  # ESP -> events per bucket
    unknown: list[int]  # unknown events per bucket, every ESP
    unknown_by_esp: dict[str, int]

    @property
    def totals(self) -> list[int]:
        return [sum(per[i] for per in self.counts.values()) for i in range(self.buckets)]

    def table(self) -> list[dict[str, object]]:
        minutes = self.buckets * self.bucket.total_seconds() / 60
        rows = []
        for esp, per in sorted(self.counts.items(), key=lambda item: -sum(item[1])):
            total = sum(per)
            unknown = self.unknown_by_esp.get(esp, 0)
            rows.append({"esp": esp, "events": total, "per_minute": total / minutes, "unknown": unknown,
                         "unknown_share": unknown / total if total else 0.0})
        return rows


def rates(minutes: dict[tuple[int, str, bool], int], hours: int, now: datetime | None = None) -> Rates:
    """``minutes`` ((minute, ESP, unknown?) -> count) in buckets over the last ``hours``."""
    now = now or datetime.now(UTC)
    bucket = timedelta(minutes=BUCKET_MINUTES[hours])
    seconds = int(bucket.total_seconds())
    buckets = hours * 60 // BUCKET_MINUTES[hours]
    last = int(now.timestamp()) // seconds * seconds  # the bucket now is in
    first = last - (buckets - 1) * seconds
    counts: dict[str, list[int]] = {}
    unknown = [0] * buckets
    unknown_by_esp: dict[str, int] = {}
    for (minute, esp, is_unknown), count in minutes.items():
        index = (minute - first) // seconds
        if not 0 <= index < buckets:
            continue
        counts.setdefault(esp, [0] * buckets)[index] += count
        if is_unknown:
            unknown[index] += count
            unknown_by_esp[esp] = unknown_by_esp.get(esp, 0) + count
    return Rates(datetime.fromtimestamp(first, UTC), bucket, buckets, counts, unknown, unknown_by_esp)


def _nice_ceiling(value: float) -> float:
    """1, 2, 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _frame(r: Rates, top_value: float, label: Callable[[float], str]) -> Chart:
    chart = Chart()
    plot_height = chart.bottom - TOP
    chart.grid = [(chart.bottom - plot_height * i / 4, label(top_value * i / 4)) for i in range(5)]
    step = (WIDTH - LEFT) / r.buckets
    every = max(1, r.buckets // 6)
    chart.labels = [(LEFT + step * i, (r.start + r.bucket * i).strftime("%H:%M")) for i in range(0, r.buckets, every)]
    return chart


def events_chart(r: Rates) -> Chart:
    """Stacked bars: each bucket's events, a colour per ESP."""
    # Four grid steps of a round size: labels of whole numbers.
    top_value = 4 * _nice_ceiling(max(max(r.totals, default=0), 4) / 4)
    chart = _frame(r, top_value, lambda v: f"{v:,.0f}")
    step = (WIDTH - LEFT) / r.buckets
    scale = (chart.bottom - TOP) / top_value
    esps = sorted(r.counts, key=lambda esp: -sum(r.counts[esp]))
    colors = {esp: PALETTE[i % len(PALETTE)] for i, esp in enumerate(esps)}
    chart.legend = [(colors[esp], esp) for esp in esps]
    for i in range(r.buckets):
        y = chart.bottom
        when = (r.start + r.bucket * i).strftime("%H:%M")
        for esp in esps:
            count = r.counts[esp][i]
            if count:
                height = count * scale
                y -= height
                chart.bars.append(Bar(LEFT + step * i + 1, y, max(step - 2, 1), height, colors[esp], f"{when} {esp}: {count:,}"))
    return chart


def unknown_chart(r: Rates) -> Chart:
    """Bars: each bucket's share of ``unknown`` event types (0-100%)."""
    chart = _frame(r, 1.0, lambda v: f"{v:.0%}")
    step = (WIDTH - LEFT) / r.buckets
    plot_height = chart.bottom - TOP
    for i, (unknown, total) in enumerate(zip(r.unknown, r.totals)):
        if total:
            share = unknown / total
            when = (r.start + r.bucket * i).strftime("%H:%M")
            chart.bars.append(Bar(LEFT + step * i + 1, chart.bottom - share * plot_height, max(step - 2, 1),
                                  share * plot_height, "#e15759", f"{when}: {share:.1%} unknown ({unknown:,} of {total:,})"))
    chart.legend = [("#e15759", "unknown event types, share of all events")]
    return chart
