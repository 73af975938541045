"""Small charts drawn on the server as inline SVG (no external service, no
script, nothing for the Content-Security-Policy to allow).

Colours and strokes are SVG attributes, not ``style``, because the page's
CSP forbids inline styles. Every label goes through ``escape``.
"""
from __future__ import annotations

import datetime
import math
from typing import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 520, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 36
COLOURS = ("#2f6db5", "#d9822b", "#3a9c5b", "#c23b3b", "#7d5ba6", "#8c6d31", "#1b9aaa", "#666666")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= step * factor:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.3g}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
            f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>',
            f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle" '
            f'fill="#444">{escape(x_label)}</text>',
            f'<text x="12" y="{(TOP + HEIGHT - BOTTOM) / 2}" font-size="11" text-anchor="middle" fill="#444" '
            f'transform="rotate(-90 12 {(TOP + HEIGHT - BOTTOM) / 2})">{escape(y_label)}</text>']


def _axes(parts: list[str], x0: float, x1: float, y1: float, *, x_time: bool = False,
          x_ticks: bool = True) -> tuple:
    """Draw axes and ticks; return the value -> pixel mappings."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > 0 else 1

    def sx(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * plot_w

    def sy(v: float) -> float:
        return TOP + plot_h - v / y1 * plot_h
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#888"/>')
    parts.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>')
    for tick in _ticks(0, y1, 4):
        parts.append(f'<line x1="{LEFT - 3}" y1="{sy(tick):.1f}" x2="{LEFT + plot_w}" y2="{sy(tick):.1f}" '
                     f'stroke="#e4e4e4"/><text x="{LEFT - 5}" y="{sy(tick) + 4:.1f}" font-size="10" '
                     f'text-anchor="end" fill="#444">{_fmt(tick)}</text>')
    ticks = (_time_ticks(x0, x1) if x_time else [(t, _fmt(t)) for t in _ticks(x0, x1, 5)]) if x_ticks else []
    for tick, label in ticks:
        parts.append(f'<text x="{sx(tick):.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle" '
                     f'fill="#444">{label}</text>')
    return sx, sy


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
              2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)
"""Tick spacings a clock reader expects (seconds): never a fraction of a second."""


def _time_ticks(low: float, high: float, count: int = 5) -> list[tuple[float, str]]:
    """Ticks on whole seconds, minutes, hours or days, each with a label that differs
    from its neighbours (a 2-second plot used to show ``18:01:01`` twice)."""
    span = max(high - low, 1.0)
    step = next((s for s in TIME_STEPS if span / s <= count), TIME_STEPS[-1])
    time_format = "%H:%M:%S" if step < 60 else "%H:%M" if step < 86400 else "%m-%d"
    if step < 86400 and span > 86400:
        time_format = "%m-%d %H:%M"
    ticks: list[tuple[float, str]] = []
    tick = math.ceil(low / step) * step
    while tick <= high:
        label = datetime.datetime.fromtimestamp(tick, datetime.timezone.utc).strftime(time_format)
        if not ticks or ticks[-1][1] != label:
            ticks.append((tick, label))
        tick += step
    if not ticks:  # under a second of data: label where it starts
        ticks.append((low, datetime.datetime.fromtimestamp(low, datetime.timezone.utc).strftime(time_format)))
    return ticks


def empty(title: str, message: str = "no data yet") -> Markup:
    parts = _frame(title, "", "")
    parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="12" text-anchor="middle" '
                 f'fill="#888">{escape(message)}</text></svg>')
    return Markup("".join(parts))


def histogram(values: Sequence[float], *, title: str, x_label: str, bins: int = 20,
              marker: float | None = None, marker_label: str = "") -> Markup:
    """Counts of ``values`` in equal bins; ``marker`` draws a vertical line
    (e.g. the requested memory, so over-asking shows at a glance)."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return empty(title)
    low = min(values + ([marker] if marker is not None else []))
    high = max(values + ([marker] if marker is not None else []))
    low = min(low, 0.0)
    high = high * 1.1 if high > 0 else 1.0  # room for the marker's label
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    parts = _frame(title, x_label, "count")
    sx, sy = _axes(parts, low, low + width * bins, max(counts))
    for i, count in enumerate(counts):
        if count:
            x, right = sx(low + i * width), sx(low + (i + 1) * width)
            parts.append(f'<rect x="{x:.1f}" y="{sy(count):.1f}" width="{max(right - x - 1, 1):.1f}" '
                         f'height="{sy(0) - sy(count):.1f}" fill="{COLOURS[0]}"><title>{count}</title></rect>')
    if marker is not None:
        x = sx(marker)
        anchor, dx = ("end", -4) if x > WIDTH / 2 else ("start", 4)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{sy(0):.1f}" stroke="{COLOURS[3]}" '
                     f'stroke-width="2" stroke-dasharray="4 3"/><text x="{x + dx:.1f}" y="{TOP + 10}" '
                     f'font-size="10" text-anchor="{anchor}" fill="{COLOURS[3]}">{escape(marker_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, y_label: str,
               x_label: str = "time (UTC)") -> Markup:
    """One line per series over epoch-second x values, with a legend."""
    points = [p for s in series.values() for p in s]
    if not points:
        return empty(title)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    parts = _frame(title, x_label, y_label)
    sx, sy = _axes(parts, x0, x1, max(p[1] for p in points), x_time=True)
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(values))
        if len(values) == 1:
            x, y = values[0]
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<rect x="{WIDTH - RIGHT - 150}" y="{TOP + 2 + 13 * i}" width="9" height="9" fill="{colour}"/>'
                     f'<text x="{WIDTH - RIGHT - 137}" y="{TOP + 10 + 13 * i}" font-size="10" fill="#222">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(counts: dict[str, float], *, title: str, y_label: str = "count") -> Markup:
    """Vertical bars, one per label (resource classes, sites, error classes)."""
    if not counts:
        return empty(title)
    parts = _frame(title, "", y_label)
    n = len(counts)
    top = max(counts.values()) or 1
    sx, sy = _axes(parts, 0, max(n, 4), top * 1.15, x_ticks=False)
    for i, (label, value) in enumerate(counts.items()):
        x, right = sx(i), sx(i + 1)
        parts.append(f'<rect x="{x + 4:.1f}" y="{sy(value):.1f}" width="{max(right - x - 8, 1):.1f}" '
                     f'height="{sy(0) - sy(value):.1f}" fill="{COLOURS[i % len(COLOURS)]}">'
                     f'<title>{escape(label)}: {_fmt(value)}</title></rect>'
                     f'<text x="{(x + right) / 2:.1f}" y="{sy(value) - 3:.1f}" font-size="10" text-anchor="middle" '
                     f'fill="#222">{_fmt(value)}</text>'
                     f'<text x="{(x + right) / 2:.1f}" y="{sy(0) + 14:.1f}" font-size="10" text-anchor="middle" '
                     f'fill="#444">{escape(label[:22])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(days: Sequence[str], series: dict[str, dict[str, float]], *, title: str, y_label: str) -> Markup:
    """One bar per day, stacked by series (accounting: hours per day by user, site, ...), with a legend."""
    totals = [sum(values.get(day, 0.0) for values in series.values()) for day in days]
    if not days or not any(totals):
        return empty(title, "no hours in this window")
    parts = _frame(title, "day (UTC)", y_label)
    sx, sy = _axes(parts, 0, max(len(days), 4), max(totals) * 1.1, x_ticks=False)
    for i, day in enumerate(days):
        x, right, base = sx(i), sx(i + 1), 0.0
        for j, (name, values) in enumerate(series.items()):
            value = values.get(day, 0.0)
            if value > 0:
                parts.append(f'<rect x="{x + 2:.1f}" y="{sy(base + value):.1f}" width="{max(right - x - 4, 1):.1f}" '
                             f'height="{sy(base) - sy(base + value):.1f}" fill="{COLOURS[j % len(COLOURS)]}">'
                             f'<title>{escape(day)} {escape(name)}: {_fmt(value)}</title></rect>')
                base += value
        if len(days) <= 14 or i % max(1, len(days) // 7) == 0:
            parts.append(f'<text x="{(x + right) / 2:.1f}" y="{sy(0) + 14:.1f}" font-size="10" '
                         f'text-anchor="middle" fill="#444">{escape(day[5:])}</text>')
    for j, name in enumerate(list(series)[:8]):
        parts.append(f'<rect x="{WIDTH - RIGHT - 110}" y="{TOP + 2 + 13 * j}" width="9" height="9" '
                     f'fill="{COLOURS[j % len(COLOURS)]}"/><text x="{WIDTH - RIGHT - 97}" y="{TOP + 10 + 13 * j}" '
                     f'font-size="10" fill="#222">{escape(name[:16])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
