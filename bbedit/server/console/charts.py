"""Small inline SVG charts for the Traffic page (drawn on the server: no script, no external asset).
Each chart carries a title and a description for screen readers; the page shows the numbers in a
table beside it."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28


@dataclass(frozen=True)
class Series:
    """One line or stack layer: its name, a CSS class (its colour) and a value per x (None: no data)."""

    name: str
    css: str
    values: Sequence[float | None]


def _nice(top: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``top``."""
    if top <= 0:
        return 1.0
    for mag in range(-3, 12):
        for step in (1, 2, 2.5, 5):
            v = step * 10.0**mag
            if v >= top:
                return v
    return top


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def _label(ts: float, step_s: int) -> str:
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return t.strftime("%H:%M") if step_s < 86_400 else t.strftime("%m-%d")


def _frame(title: str, desc: str, ymax: float, starts: Sequence[float], step_s: int) -> list[str]:
    key = re.sub(r"\W+", "-", title.lower()).strip("-")
    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="t-{key} d-{key}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<title id="t-{key}">{escape(title)}</title>', f'<desc id="d-{key}">{escape(desc)}</desc>']
    for k in range(5):
        y = TOP + (H - TOP - BOTTOM) * k / 4
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(_fmt(ymax * (4 - k) / 4))}</text>')
    n = len(starts)
    for i in range(0, n, max(1, n // 6)):
        x = LEFT + (W - LEFT - RIGHT) * (i + 0.5) / max(n, 1)
        out.append(f'<text class="axis" x="{x:.1f}" y="{H - 8}" text-anchor="middle">'
                   f'{escape(_label(starts[i], step_s))}</text>')
    return out


def stacked_bars(title: str, desc: str, starts: Sequence[float], step_s: int, layers: Sequence[Series]) -> str:
    """Bars per interval, the layers stacked (counts)."""
    n = len(starts)
    totals = [sum((layer.values[i] or 0) for layer in layers) for i in range(n)]
    ymax = _nice(max([4.0, *totals]))  # counts: whole-number ticks
    out = _frame(title, desc, ymax, starts, step_s)
    bw = (W - LEFT - RIGHT) / max(n, 1)
    plot_h = H - TOP - BOTTOM
    for i in range(n):
        base = 0.0
        for layer in layers:
            v = float(layer.values[i] or 0)
            if v <= 0:
                continue
            y0 = TOP + plot_h * (1 - (base + v) / ymax)
            h = plot_h * v / ymax
            out.append(f'<rect class="{layer.css}" x="{LEFT + i * bw + bw * 0.1:.1f}" y="{y0:.1f}" '
                       f'width="{max(bw * 0.8, 0.5):.1f}" height="{h:.1f}"><title>{escape(layer.name)}: '
                       f'{_fmt(v)}</title></rect>')
            base += v
    out.append("</svg>")
    return "".join(out)


def lines(title: str, desc: str, starts: Sequence[float], step_s: int, series: Sequence[Series]) -> str:
    """One polyline per series; gaps where a value is None."""
    n = len(starts)
    vals = [float(v) for s in series for v in s.values if v is not None]
    ymax = _nice(max(vals, default=0))
    out = _frame(title, desc, ymax, starts, step_s)
    plot_h = H - TOP - BOTTOM
    for s in series:
        pts: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if pts:
                    segments.append(pts)
                    pts = []
                continue
            x = LEFT + (W - LEFT - RIGHT) * (i + 0.5) / max(n, 1)
            y = TOP + plot_h * (1 - float(v) / ymax)
            pts.append(f"{x:.1f},{y:.1f}")
        if pts:
            segments.append(pts)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                out.append(f'<circle class="{s.css}" cx="{cx}" cy="{cy}" r="2.5"/>')
            else:
                out.append(f'<polyline class="{s.css}" fill="none" points="{" ".join(seg)}"/>')
    out.append("</svg>")
    return "".join(out)


def hbars(title: str, items: Sequence[tuple[str, float]], css: str = "bar-hits") -> str:
    """Horizontal bars, one per (label, value), longest first as given."""
    if not items:
        return ""
    row = 18
    height = row * len(items) + 8
    top = max(v for _, v in items) or 1
    out = [f'<svg class="chart hbars" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, v) in enumerate(items):
        y = 4 + i * row
        w = (W - 260) * v / top
        text = label if len(label) <= 34 else label[:33] + "…"
        out.append(f'<text class="axis" x="4" y="{y + 15}">{escape(text)}</text>')
        out.append(f'<rect class="{css}" x="230" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}"/>')
        out.append(f'<text class="axis" x="{236 + w:.1f}" y="{y + 15}">{escape(_fmt(v))}</text>')
    out.append("</svg>")
    return "".join(out)
