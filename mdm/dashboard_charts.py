"""The dashboard's two charts, drawn on the server as inline SVG (no script, no chart library, no
style attribute: the CSP allows none; colours come from static/css/dashboard.css by class).
Each is an image with a text alternative given by the caller; the page also shows the figures
as text beside it."""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PAD_L, PAD_R, PAD_T, PAD_B = 52, 12, 14, 24
SEGMENTS = ("succeeded", "failed", "expired", "cancelled", "pending")  # bottom to top


@dataclass(frozen=True)
class Frame:
    """A chart's drawing box (viewBox units); the SVG scales whole, so its text stays in proportion."""

    width: int
    height: int

    @property
    def inner_w(self) -> float:
        return self.width - PAD_L - PAD_R

    @property
    def inner_h(self) -> float:
        return self.height - PAD_T - PAD_B

    def open(self, label: str, css: str) -> str:
        return (f'<svg class="dash-chart {css}" viewBox="0 0 {self.width} {self.height}" role="img" '
                f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">')

    def grid(self, top: int) -> list[str]:
        parts = []
        for i in range(5):
            gy = PAD_T + self.inner_h * (1 - i / 4)
            parts.append(f'<line class="grid" x1="{PAD_L}" y1="{gy:.1f}" x2="{self.width - PAD_R}" y2="{gy:.1f}"/>')
            parts.append(f'<text class="axis" x="{PAD_L - 6}" y="{gy + 4:.1f}" text-anchor="end">{top * i // 4:,}</text>')
        return parts


WIDE, HALF = Frame(640, 180), Frame(400, 210)


def nice_top(value: int) -> int:
    """The axis' top: at least value, with four whole, round steps (4, 40, 2,000, ...)."""
    step = max(1, math.ceil(value / 4))
    magnitude = 10 ** (len(str(step)) - 1)
    return 4 * next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= step)


def online_chart(points, *, start: datetime, end: datetime, step: timedelta, label: str) -> SafeString:
    """The fleet online (a filled line) against its size (a dashed line) between start and end.
    `points` have `at`, `online` and `total`; two more than 2 steps apart are not joined, so a
    stretch without samples (the server was down) shows as a gap, not as a straight line."""
    f = WIDE
    span = max((end - start).total_seconds(), 1)
    top = nice_top(max([p.total for p in points] + [1]))

    def xy(at, value):
        return f"{PAD_L + f.inner_w * (at - start).total_seconds() / span:.1f},{PAD_T + f.inner_h * (1 - value / top):.1f}"

    runs, last = [], None
    for p in points:
        if last is None or p.at - last > 2 * step:
            runs.append([])
        runs[-1].append(p)
        last = p.at
    parts = [f.open(label, "online-chart"), *f.grid(top)]
    fmt = "%H:%M" if end - start <= timedelta(days=1) else "%m-%d"
    for i in range(5):
        at = start + (end - start) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text class="axis" x="{PAD_L + f.inner_w * i / 4:.1f}" y="{f.height - 6}" text-anchor="{anchor}">{at:{fmt}}</text>')
    base = PAD_T + f.inner_h
    for run in runs:
        online = " ".join(xy(p.at, p.online) for p in run)
        total = " ".join(xy(p.at, p.total) for p in run)
        if len(run) == 1:
            x, y = online.split(",")
            parts.append(f'<circle class="online" cx="{x}" cy="{y}" r="3"/>')
            continue
        first_x, last_x = online.split(",", 1)[0], online.rsplit(" ", 1)[-1].split(",")[0]
        parts.append(f'<polygon class="online-area" points="{first_x},{base} {online} {last_x},{base}"/>')
        parts.append(f'<polyline class="total" points="{total}"/>')
        parts.append(f'<polyline class="online" points="{online}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def commands_chart(days, *, label: str) -> SafeString:
    """One stacked bar per day: its deliveries by outcome (SEGMENTS, each a class), the day's
    command count above it. `days` have `day`, `commands`, `deliveries` and one count per segment."""
    f = HALF
    top = nice_top(max([d.deliveries for d in days] + [1]))
    slot = f.inner_w / max(len(days), 1)
    bar_w = min(slot * 0.6, 40)
    parts = [f.open(label, "commands-chart"), *f.grid(top)]
    for i, d in enumerate(days):
        x = PAD_L + slot * i + (slot - bar_w) / 2
        y = PAD_T + f.inner_h
        for segment in SEGMENTS:
            n = getattr(d, segment)
            if not n:
                continue
            h = f.inner_h * n / top
            y -= h
            parts.append(f'<rect class="seg {segment}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                         f"<title>{int(n)} {segment}</title></rect>")
        if d.commands:
            parts.append(f'<text class="count" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{d.commands}</text>')
        parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{f.height - 6}" text-anchor="middle">{d.day:%a %d}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
