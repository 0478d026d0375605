"""History charts drawn on the server as inline SVG (no JavaScript, no chart library)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 170
PAD_L, PAD_R, PAD_T, PAD_B = 40, 10, 10, 24
MAX_POINTS = 360


@dataclass(frozen=True)
class Series:
    points: list[tuple[datetime, float | None]]
    label: str
    unit: str
    y_max: float
    colour: str = "#2563eb"


def _downsample(points, limit=MAX_POINTS):
    if len(points) <= limit:
        return points
    step = len(points) / limit
    return [points[int(i * step)] for i in range(limit)]


def line_chart(series: Series, *, start: datetime, end: datetime) -> SafeString:
    """An SVG line chart of one series between start and end; gaps (None, or no sample for more
    than 5 minutes) break the line so an offline stretch shows as a gap."""
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    span = max((end - start).total_seconds(), 1)
    y_max = series.y_max or 1

    def x(at):
        return PAD_L + inner_w * (at - start).total_seconds() / span

    def y(v):
        return PAD_T + inner_h * (1 - min(max(v, 0), y_max) / y_max)

    paths, current, last_at = [], [], None
    for at, value in _downsample(series.points):
        if value is None or (last_at is not None and at - last_at > timedelta(minutes=5)):
            if current:
                paths.append(current)
            current = []
        if value is not None:
            current.append(f"{x(at):.1f},{y(value):.1f}")
        last_at = at
    if current:
        paths.append(current)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(series.label)}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        gy = PAD_T + inner_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{PAD_L}" y1="{gy:.1f}" x2="{WIDTH - PAD_R}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{PAD_L - 6}" y="{gy + 4:.1f}" text-anchor="end">{y_max * frac:.0f}</text>')
    # Times of day across a day or so; past that the date is what tells the ticks apart.
    tick = "%H:%M" if span <= 36 * 3600 else "%d %b"
    for i in range(5):
        at = start + (end - start) * i / 4
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{HEIGHT - 6}" text-anchor="{"start" if i == 0 else "end" if i == 4 else "middle"}">'
            f"{at.strftime(tick)}</text>"
        )
    for points in paths:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{escape(series.colour)}"/>')
        else:
            line = " ".join(points)
            first_x, last_x = points[0].split(",")[0], points[-1].split(",")[0]
            base = PAD_T + inner_h
            parts.append(f'<polygon class="area" fill="{escape(series.colour)}" points="{first_x},{base} {line} {last_x},{base}"/>')
            parts.append(f'<polyline fill="none" stroke="{escape(series.colour)}" stroke-width="2" points="{line}"/>')
    if not paths:
        parts.append(f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">No samples in this period</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
