"""The policy fan-out figure (`make bench`; alone: `bench/run.py --policy-only`), issue 17's goal:
assigning a changed policy to 2,000 simulated devices reaches 99% applied and reported within 2
heartbeat intervals, with the steady heartbeat p99 unchanged beyond noise.

A fleet of simulated devices (loadtest/simulator/: the v1.1 policy channel as the agent does it:
the heartbeat answer's `policy_version` or a `sync` push makes a device fetch, verify the
signature, apply the items to its simulated Device Owner and PUT its per-item states) enrolled
and heartbeating at the steady figure's interval (10 s, open loop), pushes consumed. Then
BENCH_POLICY_TRIALS (3) times: a quiet window of two intervals (heartbeat latency "before"); a new
policy with changed items (kiosk, settings, restrictions, system update) created, and assigned to
every device of the fleet through the admin API (t0: that call); heartbeat latency over the two
intervals after t0 ("during"). Each heartbeat counts in the window it was sent in (the fan-out
holds heartbeats up: counted by their answer's time, they would land in the next trial's quiet
window), so a trial lasts until every heartbeat of its window has its answer or its client timeout
(SETTLE_S), which is also the gap before the next quiet window. "Applied and reported" is the server's own view: a device counts
once PostgreSQL holds its report of the assigned version with every item applied
(DevicePolicyState, what the console's compliance figures read), timed by the report's
`reported_at`. Each figure is the median of the trials; the admin API's compliant count is checked
once at the end.

Each trial's raw figures also say where the time and the CPU went: `slow_by_second`, the heartbeats
of the window after t0 slower than the quiet window's p99, by the second they were sent in (a stall
at the assignment shows at its start, a throughput limit for as long as the fetches and reports
last); `cores_quiet` and `cores_during`, the cores in use on average in each window by the simulator
(this process), each granian process (`web`: the devices' heartbeats and more, `sync`: their policy
fetches and reports, `console`: the admin API's), the Celery workers, Redis and PostgreSQL (/proc),
which tells a saturated machine from a queue that is not the CPU's.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

TRIALS = int(os.environ.get("BENCH_POLICY_TRIALS", "3"))
INTERVAL_S = 10.0  # the steady figure's (bench/run.py: the fleet setting and the simulator's interval)
WINDOW_S = 2 * INTERVAL_S  # the goal, and the latency windows before and during
DEADLINE_S = 8 * INTERVAL_S  # a trial gives up here (its figures then say None)
WARM_S = 2 * INTERVAL_S  # every device's first, cold heartbeats over (as the other fleet figures)
WARM_MAX_S = 12 * INTERVAL_S
SETTLE_S = 30.0  # the simulator's client timeout: by then every heartbeat of the window has its outcome
# BENCH_POLICY_PUSH=0: devices without FCM (no token at enrollment): they learn of a change only
# from their next heartbeat's policy_version, spread over one interval instead of all at once.
PUSH = os.environ.get("BENCH_POLICY_PUSH", "1") != "0"
GOAL_INTERVALS = 2.0
# "Unchanged beyond noise": the during-window p99 at most this much above the highest quiet window's.
NOISE_RATIO = 1.25
# A quiet window is a baseline only if it was quiet: its heartbeat p99 at most this (the steady
# figure's own order; the seed targets are 150 / 300 ms) and the machine at most this busy. On a
# machine too slow for the fleet (the steady load alone keeps it busy, a fan-out saturates it) the
# ratio compares two queues, and the figure says so and fails instead of passing by accident.
QUIET_P99_MAX_MS = 50.0
QUIET_BUSY_MAX = 0.5
FIGURES = ("api_answer_s", "reported_99_s", "reported_100_s", "client_reported_99_s", "before_p99_ms", "during_p99_ms",
           "burst_p99_ms")


def policy_items(trial: int) -> dict:
    """What the operator changes between trials: every item a simulated Device Owner applies."""
    return {
        "kiosk": {"package": "com.example.kiosk", "lock_task": True, "relaunch": True, "status_bar": trial % 2 == 1},
        "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 300 + 60 * trial},
        "restrictions": ["no_factory_reset", "no_debugging_features", "no_install_unknown_sources"][: 2 + trial % 2],
        "system_update": {"type": "windowed", "window_start_min": 120 + trial, "window_end_min": 240,
                          "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
    }


def pct(values: list[float], p: float) -> float | None:
    from loadtest.simulator import percentile

    return round(percentile(values, p) * 1000, 2) if values else None


def at_fraction(times: list[float], target: int, fraction: float) -> float | None:
    n = math.ceil(target * fraction)
    return round(times[n - 1], 2) if n and len(times) >= n else None


def compliant_reports(version: int) -> list[datetime]:
    """When PostgreSQL got each report of `version` with every item applied (the last one wins)."""
    from devices.models import DevicePolicyState

    return list(DevicePolicyState.objects.filter(version=version, applied_version=version, all_applied=True)
                .values_list("reported_at", flat=True))


def sent_between(stats, start: float, end: float) -> list[float]:
    """Latencies of the heartbeats sent (scheduled) in [start, end): a heartbeat the fan-out held
    up counts in the window it was sent in, however late its answer came."""
    return [lat for sent, lat in zip(stats.sent["heartbeat"], stats.latencies["heartbeat"]) if start <= sent < end]


def lag_between(stats, start: float, end: float) -> float | None:
    """p99 of the simulator's lag (ms) for the heartbeats due in [start, end)."""
    return pct([lag for due, lag in zip(stats.lag_at, stats.lag) if start <= due < end], 99)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PLANE_ARGS: dict[str, str] = {}  # "--port N " of each granian service but web's: set from the URLs (fan_out)


def cpu_seconds_by_group() -> dict[str, float]:
    """CPU seconds used so far: by the whole machine ("machine"), and by its processes grouped:
    the simulator (this process), each granian process, the Celery workers and beat, Redis,
    PostgreSQL, everything else. Differences between two readings say where a window's CPU went."""
    me = os.getpid()
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    # The whole machine, kernel included: all but idle and iowait.
    out: dict[str, float] = {"machine": (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # utime, stime, and the children it reaped (cutime, cstime): a process that ran and
        # exited inside the window (a PostgreSQL backend, a recycled worker) counts for its parent.
        used = sum(int(v) for v in fields[11:15]) / CLOCK_TICKS
        if int(entry.name) == me:
            group = "simulator"
        elif "granian" in cmdline:  # per process: granian's master and each worker (a GIL each)
            plane = next((name for name, arg in PLANE_ARGS.items() if arg in cmdline), "web")
            group = f"{plane} {entry.name}"
        elif "celery" in cmdline:
            group = "celery"
        elif "redis-server" in cmdline:
            group = "redis"
        elif "postgres" in cmdline:
            group = "postgresql"
        else:
            group = "other"
        out[group] = out.get(group, 0.0) + used
    return out


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """CPU cores used on average per group between two readings (a process that exited unreaped
    counts as 0)."""
    return {g: round(max(0.0, after.get(g, 0.0) - before.get(g, 0.0)) / seconds, 2) for g in sorted(after)}


def slow_seconds(stats, t0: float, threshold_ms: float | None) -> list[int]:
    counts = [0] * int(WINDOW_S)
    if threshold_ms is None:
        return counts
    for sent, lat in zip(stats.sent["heartbeat"], stats.latencies["heartbeat"]):
        if t0 <= sent < t0 + WINDOW_S and lat * 1000 > threshold_ms:
            counts[int(sent - t0)] += 1
    return counts


async def trial(fleet, admin: httpx.AsyncClient, number: int, device_ids: list[str]) -> dict:
    from loadtest.simulator import Stats

    fleet.stats, fleet.events[:] = Stats(), []
    quiet_from, cpu_quiet = time.monotonic(), cpu_seconds_by_group()
    await asyncio.sleep(WINDOW_S)  # the quiet window
    cpu_quiet = cores_used(cpu_quiet, cpu_seconds_by_group(), time.monotonic() - quiet_from)
    created = await admin.post("/api/v1/policies", json={"name": f"bench-policy-{number}-{int(time.time())}",
                                                        "items": policy_items(number)})
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    t0, t0_wall, cpu_t0 = time.monotonic(), time.time(), cpu_seconds_by_group()
    answer = await admin.post(f"/api/v1/policies/{created.json()['id']}/assign", json={"target": {"device_ids": device_ids}})
    api_s = time.monotonic() - t0
    assert answer.status_code == 200, answer.text
    target = answer.json()["target_count"]
    print(f"policy trial {number}: version {version} assigned to {target} devices, answered after {api_s:.2f} s", flush=True)
    reports: list[datetime] = []
    done_at = cpu_during = None
    # Until every report is in and every heartbeat sent in the window after t0 has its answer (or
    # its client timeout); that wait is also the gap before the next trial's quiet window.
    while time.monotonic() - t0 < DEADLINE_S:
        await asyncio.sleep(0.5)
        if cpu_during is None and time.monotonic() - t0 >= WINDOW_S:
            cpu_during = cores_used(cpu_t0, cpu_seconds_by_group(), time.monotonic() - t0)
        if len(reports) < target:
            reports = await asyncio.to_thread(compliant_reports, version)
            if len(reports) >= target:
                done_at = time.monotonic()
        elif time.monotonic() - t0 >= WINDOW_S + SETTLE_S:
            break
    before = sent_between(fleet.stats, quiet_from, quiet_from + WINDOW_S)
    during = sent_between(fleet.stats, t0, t0 + WINDOW_S)
    burst = sent_between(fleet.stats, t0, done_at or time.monotonic())
    slow_by_second = slow_seconds(fleet.stats, t0, pct(before, 99))
    server = sorted(r.timestamp() - t0_wall for r in reports)
    client: dict[str, float] = {}
    for t, event, who in fleet.events:
        if event == "policy_reported" and who.endswith(f"/{version}") and who not in client:
            client[who] = t - t0
    c = fleet.stats.counters
    endpoints = fleet.stats.summary()["endpoints"]
    reported_99 = at_fraction(server, target, 0.99)
    figures = {
        "version": version, "targets": target, "api_answer_s": round(api_s, 2),
        "reported_99_s": reported_99, "reported_100_s": at_fraction(server, target, 1.0),
        "reported_99_intervals": round(reported_99 / INTERVAL_S, 2) if reported_99 is not None else None,
        "client_reported_99_s": at_fraction(sorted(client.values()), target, 0.99),
        "compliant": len(server),
        "fetch_by_push": c.get("policy_fetch_by_push", 0), "fetch_by_heartbeat": c.get("policy_fetch_by_heartbeat", 0),
        "fetched": c.get("policy_fetched", 0), "bad": c.get("policy_bad", 0),
        "items_not_applied": sum(v for k, v in c.items() if k.startswith("policy_item_") and k != "policy_item_applied"),
        "before_p99_ms": pct(before, 99), "during_p99_ms": pct(during, 99),
        # From t0 until every report was in PostgreSQL (or the deadline): the burst, not diluted by the window.
        "burst_p99_ms": pct(burst, 99), "before_p50_ms": pct(before, 50), "during_p50_ms": pct(during, 50),
        "heartbeats_before": len(before), "heartbeats_during": len(during),
        "heartbeat_errors": sum(n for (e, s), n in fleet.stats.statuses.items() if e == "heartbeat" and s != 200),
        **{f"{e}_p99_ms": endpoints.get(e, {}).get("p99_ms") for e in ("policy", "policy_status")},
        **{f"{e}_statuses": endpoints.get(e, {}).get("statuses", {}) for e in ("policy", "policy_status")},
        "client_lag_p99_ms": fleet.stats.summary()["client_lag_p99_ms"],
        # The simulator's own lag (a heartbeat's start after its schedule) in each window: how much
        # of a rise is the load generator's loop, which shares the machine's cores with the server.
        "client_lag_quiet_p99_ms": lag_between(fleet.stats, quiet_from, quiet_from + WINDOW_S),
        "client_lag_during_p99_ms": lag_between(fleet.stats, t0, t0 + WINDOW_S),
        # Where the tail is: heartbeats of the window after t0 slower than the quiet window's p99,
        # by the second (from t0) they were sent in.
        "slow_by_second": slow_by_second,
        # Where the machine's CPU went (cores in use on average) in the quiet window and the one after t0.
        "cores_quiet": cpu_quiet, "cores_during": cpu_during,
    }
    print(f"policy trial {number}: {figures}", flush=True)
    return figures


def median_of(trials: list[dict], key: str):
    values = [t[key] for t in trials]
    if any(v is None for v in values):
        ordered = sorted(values, key=lambda v: math.inf if v is None else v)
        return ordered[len(ordered) // 2]
    return round(statistics.median(values), 2)


async def warm_up(fleet) -> None:
    """Until every device's first, cold heartbeat is behind it (its token's first use runs bcrypt
    once: 2,000 of them take longer than WARM_S on a slow or busy machine): at least WARM_S, and
    two answered heartbeats per device on average, at most WARM_MAX_S."""
    started = time.monotonic()
    enrolled = len(fleet.by_id)
    while time.monotonic() - started < WARM_MAX_S:
        await asyncio.sleep(1)
        answered = fleet.stats.statuses.get(("heartbeat", 200), 0)
        if time.monotonic() - started >= WARM_S and answered >= 2 * enrolled:
            break
    hb = fleet.stats.summary()["endpoints"].get("heartbeat", {})
    print(f"policy warm-up: {time.monotonic() - started:.0f} s, heartbeats {hb.get('statuses')}, "
          f"p50 {hb.get('p50_ms')} ms, p99 {hb.get('p99_ms')} ms", flush=True)


async def fan_out(*, base_url: str, routes: tuple[tuple[str, str], ...] = (), admin_url: str, standin_url: str, jwt: str,
                  enroll_key: str, devices: int) -> dict:
    """`routes`: the simulator's (path prefix, base URL) pairs, the proxy's split between planes."""
    from loadtest.simulator import Fleet

    PLANE_ARGS["console"] = f"--port {httpx.URL(admin_url).port} "
    for _, base in routes:
        PLANE_ARGS["sync"] = f"--port {httpx.URL(base).port} "

    fleet = Fleet(base_url=base_url, routes=routes, enroll_key=enroll_key, devices=devices, interval=INTERVAL_S,
                  duration=TRIALS * (WINDOW_S + DEADLINE_S) + WARM_MAX_S + 600, hardware_prefix="pol", enroll_concurrency=devices,
                  push_url=standin_url if PUSH else None, failure_rate=0.0, max_connections=1000, owns_process=True)
    async with fleet:
        if PUSH:
            await fleet.register_push_tokens()
        enroll_s = await fleet.enroll_all()
        consumer = fleet.spawn(fleet.consume_pushes()) if PUSH else None
        loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices if d.device_id))
        await warm_up(fleet)
        device_ids = [d.device_id for d in fleet.devices if d.device_id]
        async with httpx.AsyncClient(base_url=admin_url, headers={"Authorization": f"Bearer {jwt}"},
                                     timeout=120) as admin:
            trials = [await trial(fleet, admin, n + 1, device_ids) for n in range(TRIALS)]
            # The admin API's view of the last trial: every device compliant.
            listed = (await admin.get("/api/v1/devices", params={"compliant": "true", "q": "pol-"})).json()
        fleet.stop_at = time.monotonic()
        await loops
        if consumer:
            consumer.cancel()
    out = {"devices": devices, "push": PUSH, "enrolled": len(device_ids), "enroll_s": round(enroll_s, 1), "interval_s": INTERVAL_S,
           "targets": trials[-1]["targets"], "trials": trials,
           "admin_api_compliant": listed.get("count") if isinstance(listed, dict) else None,
           **{key: median_of(trials, key) for key in FIGURES}}
    out["reported_99_intervals"] = round(out["reported_99_s"] / INTERVAL_S, 2) if out["reported_99_s"] is not None else None
    out["before_p99_max_ms"] = max((t["before_p99_ms"] or 0) for t in trials)
    print(f"policy: { {k: v for k, v in out.items() if k != 'trials'} }", flush=True)
    return out


def machine_busy(trial: dict, window: str) -> float | None:
    """The share of the machine's cores in use in a trial's window ("quiet" or "during")."""
    cores = trial.get(f"cores_{window}") or {}
    return round(cores["machine"] / os.cpu_count(), 2) if "machine" in cores else None


def baseline_problem(p: dict) -> str | None:
    """Why the quiet windows are no baseline, or None."""
    if p["before_p99_max_ms"] > QUIET_P99_MAX_MS:
        return f"a quiet window's heartbeat p99 was {p['before_p99_max_ms']} ms (over {QUIET_P99_MAX_MS:.0f} ms)"
    busy = [b for b in (machine_busy(t, "quiet") for t in p["trials"]) if b is not None]
    if busy and max(busy) > QUIET_BUSY_MAX:
        return f"the machine was {max(busy):.0%} busy in a quiet window (over {QUIET_BUSY_MAX:.0%})"
    return None


def ok(p: dict) -> bool:
    within = p["reported_99_s"] is not None and p["reported_99_s"] <= GOAL_INTERVALS * p["interval_s"]
    quiet = p["during_p99_ms"] is not None and p["during_p99_ms"] <= NOISE_RATIO * p["before_p99_max_ms"]
    return (within and quiet and baseline_problem(p) is None
            and all(t["items_not_applied"] == 0 and t["bad"] == 0 for t in p["trials"]))


def rows(results: dict) -> list:
    p = results.get("policy")
    if not p:
        return []

    def spread(key):
        return " / ".join(str(t[key]) for t in p["trials"])

    def busy(window):
        return " / ".join(f"{b:.0%}" if b is not None else "?" for b in (machine_busy(t, window) for t in p["trials"]))

    interval, problem = p["interval_s"], baseline_problem(p)
    pushed = sum(t.get("fetch_by_push", 0) for t in p["trials"])
    how = ("heartbeat only: devices without FCM" if not p.get("push", True) else "sync push and heartbeat" if pushed
           else "FCM on, no push: a fleet-wide change reaches devices by their heartbeats, POLICY_SYNC_PUSH_MAX")
    return [(f"policy fan-out, a changed policy assigned to {p['targets']:,} devices @{interval:.0f} s ({how})",
             f"99% applied and reported ≤ {GOAL_INTERVALS:.0f} intervals ({GOAL_INTERVALS * interval:.0f} s); "
             f"heartbeat p99 during ≤ {NOISE_RATIO}x the highest quiet window's",
             f"median of {len(p['trials'])} trials: 99% applied and reported (in PostgreSQL) after {p['reported_99_s']} s "
             f"= {p['reported_99_intervals']} intervals, 100% {p['reported_100_s']} s (trials: {spread('reported_99_s')} s; "
             f"admin API answered after {p['api_answer_s']} s); heartbeat p99 {p['before_p99_ms']} ms before, "
             f"{p['during_p99_ms']} ms in the 2 intervals after (trials before {spread('before_p99_ms')}, during "
             f"{spread('during_p99_ms')} ms; {p['burst_p99_ms']} ms until the last report); fetched by push "
             f"{spread('fetch_by_push')}, by heartbeat {spread('fetch_by_heartbeat')}; admin API: {p['admin_api_compliant']} compliant; "
             f"machine busy quiet {busy('quiet')}, during {busy('during')}"
             + (f". No baseline: {problem}; the machine is too slow or busy for this fleet, the tail "
                "figure is not measured here" if problem else ""),
             ok(p))]


def write_report(results_dir: Path, policy: dict, machine: str, raw_json: str) -> Path:
    """`--policy-only`: bench/results/<date>-policy.md, the row and the raw figures."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = results_dir / f"{day}-policy.md"
    lines = [f"# Policy fan-out benchmark, {day}", "", f"`bench/run.py --policy-only` on {machine}.", "",
             "| figure | goal | measured | |", "| --- | --- | --- | --- |",
             *[f"| {a} | {b} | {c} | {'✅' if d else '❌'} |" for a, b, c, d in rows({"policy": policy})],
             "", "## Raw figures", "```json", raw_json, "```"]
    path.write_text("\n".join(lines) + "\n")
    return path
