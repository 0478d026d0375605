"""The dashboard's two charts, drawn on the server as inline SVG (no script, no chart library, no
style attribute: the CSP allows none; colours come from static/css/dashboard.css by class).
Each is an image with a text alternative given by the caller; the page also shows the figures
as text beside it."""

from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 180
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 12, 24
INNER_W, INNER_H = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
SEGMENTS = ("succeeded", "failed", "expired", "cancelled", "pending")  # bottom to top


def _open(label: str, css: str) -> str:
    return (f'<svg class="dash-chart {css}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
            f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">')


def _grid(y_max: int) -> list[str]:
    parts = []
    for frac in (0, 0.25, 0.5, 0.75, 1):
        gy = PAD_T + INNER_H * (1 - frac)
        parts.append(f'<line class="grid" x1="{PAD_L}" y1="{gy:.1f}" x2="{WIDTH - PAD_R}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_L - 6}" y="{gy + 4:.1f}" text-anchor="end">{round(y_max * frac)}</text>')
    return parts


def online_chart(points, *, start: datetime, end: datetime, step: timedelta, label: str) -> SafeString:
    """The fleet online (a filled line) against its size (a dashed line) between start and end.
    `points` have `at`, `online` and `total`; two more than 2 steps apart are not joined, so a
    stretch without samples (the server was down) shows as a gap, not as a straight line."""
    span = max((end - start).total_seconds(), 1)
    y_max = max([p.total for p in points] + [1])

    def xy(at, value):
        return f"{PAD_L + INNER_W * (at - start).total_seconds() / span:.1f},{PAD_T + INNER_H * (1 - value / y_max):.1f}"

    runs, last = [], None
    for p in points:
        if last is None or p.at - last > 2 * step:
            runs.append([])
        runs[-1].append(p)
        last = p.at
    parts = [_open(label, "online-chart"), *_grid(y_max)]
    fmt = "%H:%M" if end - start <= timedelta(days=1) else "%m-%d"
    for i in range(5):
        at = start + (end - start) * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text class="axis" x="{PAD_L + INNER_W * i / 4:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{at:{fmt}}</text>')
    base = PAD_T + INNER_H
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
    y_max = max([d.deliveries for d in days] + [1])
    slot = INNER_W / max(len(days), 1)
    bar_w = min(slot * 0.6, 56)
    parts = [_open(label, "commands-chart"), *_grid(y_max)]
    for i, d in enumerate(days):
        x = PAD_L + slot * i + (slot - bar_w) / 2
        y = PAD_T + INNER_H
        for segment in SEGMENTS:
            n = getattr(d, segment)
            if not n:
                continue
            h = INNER_H * n / y_max
            y -= h
            parts.append(f'<rect class="seg {segment}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                         f"<title>{int(n)} {segment}</title></rect>")
        if d.commands:
            parts.append(f'<text class="count" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{d.commands}</text>')
        parts.append(f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{d.day:%a %d}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
