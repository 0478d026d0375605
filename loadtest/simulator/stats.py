"""What the simulator measures: latency (and send time) per endpoint, statuses, errors, counters, its own lag,
and the text report of `simulate_fleet`."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
    lag: list[float] = field(default_factory=list)
    lag_at: list[float] = field(default_factory=list)  # when each `lag` was due (monotonic), in the same order
    # When each request of `latencies` left (monotonic; its schedule, for an open-loop heartbeat),
    # in the same order: a benchmark reads a window by when requests were sent, not answered.
    sent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def record(self, endpoint: str, status: int, seconds: float, started: float | None = None) -> None:
        self.latencies[endpoint].append(seconds)
        if started is not None:
            self.sent[endpoint].append(started)
        self.statuses[(endpoint, status)] += 1
        if status >= 500 or status == 0:
            self.errors[(endpoint, status)] += 1

    def summary(self) -> dict:
        out: dict[str, Any] = {"endpoints": {}, "counters": dict(self.counters)}
        for endpoint, values in sorted(self.latencies.items()):
            out["endpoints"][endpoint] = {
                "count": len(values),
                **{f"p{p}_ms": round(percentile(values, p) * 1000, 2) for p in (50, 95, 99)},
                "max_ms": round(max(values) * 1000, 2),
                "statuses": {str(s): n for (e, s), n in sorted(self.statuses.items()) if e == endpoint},
            }
        out["errors"] = {f"{e} {s}": n for (e, s), n in self.errors.items()}
        out["client_lag_p99_ms"] = round(percentile(self.lag, 99) * 1000, 2) if self.lag else 0.0
        return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def format_report(report: dict) -> str:
    lines = [
        f"devices {report['devices']}, enrolled {report['enrolled']} in {report['enroll_seconds']} s "
        f"({report['enroll_retries']} retries, {report['enroll_failures']} failures)",
        f"{'endpoint':<11} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses",
    ]
    for endpoint, s in report["endpoints"].items():
        lines.append(
            f"{endpoint:<11} {s['count']:>7} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8} {s['max_ms']:>8}  {s['statuses']}"
        )
    lines.append(f"errors: {report['errors'] or 'none'}")
    lines.append("commands: " + ", ".join(f"{k} {v}" for k, v in sorted(report["counters"].items())))
    lines.append(f"client lag p99: {report['client_lag_p99_ms']} ms (high means the simulator itself is saturated)")
    return "\n".join(lines)
