"""`make bench`: the benchmark suite against the production-like set-up on this machine.

PostgreSQL and Redis (local), the web serving set-up docker-compose.yml ships (its `web`
command, read from the file), a real Celery worker, and the FCM stand-in. The fleet simulator
(loadtest/simulator/) plays the devices; wrk measures raw capacity. Writes
bench/results/<date>.md, a PNG chart beside it, and prints the table.

Scenarios: storm (2,000 devices enroll at once), steady (2,000 devices @10 s, open loop),
fan-out (one launch_app to 2,000 devices by push), capacity (max heartbeats/s vs a naive view),
console (list and detail with 20,000 devices and 30 days of history), upload (a 200 MB APK by
tus in 5 MB chunks over loopback, as CI uploads with an API key: throughput and the web
processes' peak RSS), install fan-out (a 20 MB release installed by 2,000 simulated devices
that really download it, ~10% of downloads cut and resumed; bench/install_fanout.py), with nginx
serving the files by X-Accel-Redirect as the shipped compose does (bench/nginx.py), policy fan-out
(a changed policy assigned to 2,000 heartbeating devices: 99% applied and reported, heartbeat p99
before and during; bench/policy_fanout.py).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import alerts, install_fanout, nginx, policy_fanout, sizing  # noqa: E402 (ROOT on the path first)
VENV_BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "var" / "bench"
WEB_PORT, SYNC_PORT, CONSOLE_PORT, STANDIN_PORT, FRONT_PORT = 8100, 8102, 8101, 9099, 8180
BASE = f"http://127.0.0.1:{WEB_PORT}"  # the device plane (compose's `web`): what the devices call
SYNC = f"http://127.0.0.1:{SYNC_PORT}"  # the desired-state plane (`sync`): their policy fetches and reports
DEVICE_ROUTES = tuple((prefix, SYNC) for prefix in nginx.SYNC_PREFIXES)  # the simulator's stand-in for the proxy
CONSOLE = f"http://127.0.0.1:{CONSOLE_PORT}"  # the people plane (`console`): the admin API, pages, uploads
FRONT = f"http://127.0.0.1:{FRONT_PORT}"  # nginx in front of the three (bench/nginx.py), when it is there
STANDIN = f"http://127.0.0.1:{STANDIN_PORT}"

# The fan-out is repeated and each of its times reported as the median of the trials: on this
# shared 2-core machine one trial's figures spread by ~1.5x within the hour with the code
# unchanged (docs/performance.md, "Command fan-out").
FANOUT_TRIALS = int(os.environ.get("BENCH_FANOUT_TRIALS", "3"))
FANOUT_GAP_S = 5  # between trials: the last results' markers settle, heartbeats back to idle
FANOUT_TIMES = ("api_answer_s", "received_99_s", "received_100_s", "acked_99_s", "acked_100_s", "recorded_100_s",
                "fcm_first_s", "fcm_99_s", "fcm_100_s")


def median_index(values) -> int:
    """Which trial holds the median of a figure; a trial that never got there (None) counts as the slowest."""
    ordered = sorted(range(len(values)), key=lambda i: float("inf") if values[i] is None else values[i])
    return ordered[len(ordered) // 2]

GOALS = {
    "steady_p95_ms": 30,
    "steady_p99_ms": 30,  # issue 20: and at most 2x the paced /healthz p99 (the server's floor)
    "steady_healthz_x": 2.0,
    "capacity_rps": 2000,
    "capacity_healthz_ratio": 0.30,
    "no_kids_ratio": 0.80,  # a heartbeat without kids within 20% of one with
    "alerts_tail_x": 1.25,  # issue 18: the steady p99 does not move beyond noise with alerting on
    "capacity_ratio": 2.0,
    "fanout_99_received_s": 2.0,
    "fanout_100_acked_s": 5.0,
    "storm_all_enrolled_s": 60.0,
    "console_p95_ms": 150,
    "web_rss_mb": 300,
    "upload_web_rss_mb": 300,
}
UPLOAD_MB = int(os.environ.get("BENCH_UPLOAD_MB", "200"))
UPLOAD_CHUNK_MB = 5

ENV = {
    "DATABASE_URL": "postgres://mdm:mdm@127.0.0.1:5432/mdm_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
    "FIELD_ENCRYPTION_KEY": "YmVuY2gtb25seS1maWVsZC1rZXktbm90LWZvci1wcm8=",  # b"bench-only-field-key-not-for-pro"
    "CACHE_PREFIX": "bench",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "PUBLIC_BASE_URL": BASE,
    "FCM_ENABLED": "true",
    "FCM_CREDENTIALS_FILE": str(WORK / "fcm-standin.json"),
    "FCM_PROJECT_ID": "mdm-standin",
    "FCM_SEND_URL": f"{STANDIN}/v1/projects/mdm-standin/messages:send",
    "BENCH_NAIVE_VIEW": "true",
    # The stand-in (manage.py fcm_standin) and the naive view are dev tools (loadtest/), off in a
    # production set-up unless asked for.
    "DEV_TOOLS": "1",
    "MDM_VAR_DIR": str(WORK / "var"),
    # Alert e-mails go to the bench's own SMTP server (bench/alerts.py), up during the alert scenario.
    "EMAIL_URL": "smtp://127.0.0.1:8925",
    # The shipped default (INFO: people's requests and the device requests worth reading, mdm.requestlog);
    # BENCH_LOG_LEVEL=WARNING measures a quieter set-up, to be reported as such, never instead.
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
    "DJANGO_SETTINGS_MODULE": "mdm.settings",
}


# The FCM stand-in plays Google's service and the simulator plays 2,000 phones: neither is on
# our server's cores in production. They share the bench's two cores (and their CPU is taken
# from the server), but at a higher priority, so a queue inside the harness is not counted as
# the server's latency (BENCH_HARNESS_NICE=0 turns this off).
HARNESS_NICE = ["nice", "-n", os.environ.get("BENCH_HARNESS_NICE", "-5")] if os.environ.get("BENCH_HARNESS_NICE", "-5") != "0" else []


def group_nice(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def set_group_nice(pid: int, value: int) -> bool:
    """The CPU weight of the process's scheduling group. With the kernel's autogroups on (Debian's
    default), each session is a group that gets an equal share of a busy CPU whatever the nice
    values inside it, so a process's own nice does not rank it against another session's; the
    group's nice (/proc/<pid>/autogroup) does. False when there is no such file or no permission."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(value))
        return True
    except OSError:
        return False


# --- processes -------------------------------------------------------------------------------
class Processes:
    def __init__(self):
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(WORK / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def paused(procs: "Processes", names: tuple[str, ...] = ("beat", "worker", "dispatcher"), timeout: float = 60):
    """A context in which these services (their process groups) are stopped (SIGSTOP), entered at
    a moment when no other PostgreSQL session of the bench's database is inside a transaction, so
    nothing is stopped holding a lock; continued (SIGCONT) on the way out. What beat scheduled
    meanwhile waits in Redis and runs after."""
    from django.db import connection

    @contextlib.contextmanager
    def context():
        groups = [procs.procs[n].pid for n in names if n in procs.procs]
        deadline = time.monotonic() + timeout
        while True:
            for pid in groups:
                os.killpg(pid, signal.SIGSTOP)
            busy = None  # until the query answers: an error continues them too
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                                   "backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL")
                    busy = cursor.fetchone()[0]
            finally:
                if busy != 0:
                    for pid in groups:
                        os.killpg(pid, signal.SIGCONT)
            if busy == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{names} never left their transactions for {timeout} s")
            time.sleep(0.05)
        try:
            yield
        finally:
            for pid in groups:
                os.killpg(pid, signal.SIGCONT)

    return context


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def compose_command(service: str) -> list[str]:
    """The command of a docker-compose.yml service, run from this venv: the set-up we ship."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    argv = list(compose["services"][service]["command"])
    argv[0] = str(VENV_BIN / argv[0])
    return argv


def compose_nice(service: str) -> int:
    """A service's docker-compose `cpu_shares` as the scheduler's nice (weight 1024 at nice 0,
    x1.25 per step): each service is a scheduling group here as each container is a cgroup there."""
    shares = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][service].get("cpu_shares", 1024)
    return -round(math.log(shares / 1024, 1.25))


def start_service(procs: "Processes", name: str, argv: list[str], env: dict) -> subprocess.Popen:
    # As compose runs it: its processes' metrics in a directory of its own (a tmpfs there), which
    # every metric update writes to (prometheus_client's multiprocess mode, mdm/metrics.py).
    metrics_dir = WORK / "metrics" / name
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    proc = procs.start(name, argv, env)  # a session of its own: its own scheduling group
    if compose_nice(name):
        set_group_nice(proc.pid, compose_nice(name))
    return proc


def compose_web_command(port: int, service: str = "web") -> list[str]:
    """The `web` (or `console`) command, bound to localhost:port."""
    argv = compose_command(service)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


def rss_mb_of_tree(pid: int) -> dict[int, float]:
    """RSS of a process and its children (granian's workers), MiB per process."""
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except FileNotFoundError:
        pass
    out = {}
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return out


def percentile(values, p):
    from loadtest.simulator import percentile as pct

    return pct(list(values), p)


# --- set-up ----------------------------------------------------------------------------------
def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def fresh_store() -> dict:
    """An empty bench database, migrated, and an empty Redis database; returns the environment."""
    if WORK.exists():
        shutil.rmtree(WORK)
    (WORK / "var").mkdir(parents=True)
    env = {**os.environ, **ENV}
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "mdm", "-d", "postgres", "-qc", "DROP DATABASE IF EXISTS mdm_bench WITH (FORCE)",
         "-c", "CREATE DATABASE mdm_bench OWNER mdm"],
        check=True, env={**os.environ, "PGPASSWORD": "mdm"},
    )
    subprocess.run(["redis-cli", "-n", "14", "FLUSHDB"], check=True, capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def prepare(procs: Processes) -> None:
    for port in (WEB_PORT, SYNC_PORT, CONSOLE_PORT, STANDIN_PORT, FRONT_PORT):
        if not port_free(port):
            raise SystemExit(f"port {port} is in use (a previous run still going?); stop it and retry")
    env = fresh_store()
    standin = procs.start("standin", [*HARNESS_NICE, sys.executable, "manage.py", "fcm_standin", "--port", str(STANDIN_PORT),
                                      "--write-credentials", ENV["FCM_CREDENTIALS_FILE"]], env)
    if HARNESS_NICE:
        set_group_nice(standin.pid, int(HARNESS_NICE[2]))
    wait_http(f"{STANDIN}/healthz")
    start_service(procs, "worker", compose_command("worker"), env)
    start_service(procs, "dispatcher", compose_command("dispatcher"), env)
    start_service(procs, "beat", compose_command("beat"), env)  # the write-behind flush, offline sweep, ... as deployed
    start_service(procs, "web", compose_web_command(WEB_PORT), env)
    start_service(procs, "sync", compose_web_command(SYNC_PORT, "sync"), env)
    start_service(procs, "console", compose_web_command(CONSOLE_PORT, "console"), env)
    wait_http(f"{BASE}/healthz")
    wait_http(f"{SYNC}/healthz")
    wait_http(f"{CONSOLE}/healthz")
    if NGINX["binary"]:
        work = WORK / "nginx"
        conf = nginx.write_config(port=FRONT_PORT, web_port=WEB_PORT, sync_port=SYNC_PORT, console_port=CONSOLE_PORT,
                                  media_dir=WORK / "var" / "media", work=work)
        nginx.check(NGINX["binary"], conf, work)
        procs.start("nginx", nginx.argv(NGINX["binary"], conf, work), env)
        wait_http(f"{FRONT}/healthz")


NGINX: dict = {"binary": None, "why_not": ""}


def use_nginx() -> None:
    """nginx serves the APK downloads as in docker-compose.yml: the web answers X-Accel-Redirect
    (its APK_ACCEL_REDIRECT_PREFIX, read from the compose file) and nginx sends the file. Without
    nginx (not installable here, or BENCH_NGINX=0), the web workers stream the files, and the
    table says so."""
    if os.environ.get("BENCH_NGINX", "1") == "0":  # to compare: the web workers stream the files
        NGINX["binary"], NGINX["why_not"] = None, "BENCH_NGINX=0"
    else:
        NGINX["binary"], NGINX["why_not"] = nginx.ensure_installed()
    if NGINX["binary"]:
        compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        ENV["APK_ACCEL_REDIRECT_PREFIX"] = compose["x-app"]["environment"]["APK_ACCEL_REDIRECT_PREFIX"]
    else:
        print(f"nginx unavailable ({NGINX['why_not']}): the web workers stream the APK downloads", flush=True)


def django_setup() -> None:
    os.environ.update(ENV)
    import django

    django.setup()


def make_admin_and_key() -> tuple[str, str]:
    from accounts.models import User
    from enrollment import services as enrollment
    from mdm import services as core

    admin = User.objects.create_superuser("bench-admin", "bench@example.test", "bench-Passphrase-1", role="admin")
    core.update_fleet_settings(actor=admin, heartbeat_interval_s=10)
    secret = enrollment.create_enrollment_key(actor=admin, name="bench").raw
    return secret, admin_jwt()


def admin_jwt() -> str:
    """A fresh access token for the bench's admin: one lasts JWT_ACCESS_MINUTES (15), a full run
    more, so each area signs in again."""
    return httpx.post(f"{CONSOLE}/api/v1/auth/token", json={"username": "bench-admin", "password": "bench-Passphrase-1"}).json()["access"]


# --- scenarios -------------------------------------------------------------------------------
HARNESS_RAISED: list[bool] = []


def raise_harness_priority() -> None:
    """The fleet runs in this process: the phones' side of the harness (see HARNESS_NICE). Once
    per run (two scenarios run fleets here)."""
    if not HARNESS_NICE or HARNESS_RAISED:
        return
    HARNESS_RAISED.append(True)
    try:
        os.nice(int(HARNESS_NICE[2]))
        # This process's scheduling group is the caller's session (make, the shell: idle
        # meanwhile; a session of its own would take Ctrl-C away): raised for the run, put back after.
        before = group_nice(os.getpid())
        if before is not None and set_group_nice(os.getpid(), int(HARNESS_NICE[2])):
            atexit.register(set_group_nice, os.getpid(), before)
    except PermissionError:  # not root: GNU nice runs the stand-in unchanged too
        print("harness priority not raised (needs root)", flush=True)


def install(enroll_key: str, jwt: str, devices: int, web_pid: int, nginx_pid: int | None) -> dict:
    """The install fan-out (bench/install_fanout.py), through nginx when it is there."""
    raise_harness_priority()
    release, sha256 = install_fanout.build_release(root=ROOT, work=WORK)
    served_by = ("nginx (X-Accel-Redirect, deploy/nginx.conf over plain HTTP)" if NGINX["binary"]
                 else f"the web workers (streamed; nginx unavailable: {NGINX['why_not']})")
    return asyncio.run(install_fanout.fan_out(
        front_url=FRONT if NGINX["binary"] else BASE, admin_url=FRONT if NGINX["binary"] else CONSOLE, standin_url=STANDIN,
        jwt=jwt, enroll_key=enroll_key, devices=devices,
        release=release, sha256=sha256, web_pid=web_pid, nginx_pid=nginx_pid, rss_of=rss_mb_of_tree, served_by=served_by))


def policy(enroll_key: str, jwt: str, devices: int) -> dict:
    """The policy fan-out (bench/policy_fanout.py)."""
    raise_harness_priority()
    return asyncio.run(policy_fanout.fan_out(base_url=BASE, routes=DEVICE_ROUTES, admin_url=CONSOLE, standin_url=STANDIN,
                                             jwt=jwt, enroll_key=enroll_key, devices=devices))


async def storm_steady_fanout(enroll_key: str, jwt: str, devices: int, steady_s: float, web_pid: int,
                              quick: bool = False, fanout_only: bool = False, skip_fanout: bool = False) -> dict:
    from loadtest.simulator import Fleet, Stats

    raise_harness_priority()
    out: dict = {}
    fleet = Fleet(base_url=BASE, enroll_key=enroll_key, devices=devices, interval=10, duration=3600,
                  enroll_concurrency=devices, push_url=STANDIN, failure_rate=0.0, exec_scale=float(os.environ.get("BENCH_EXEC_SCALE", "0.5")), max_connections=1000,
                  owns_process=True)
    async with fleet:
        await fleet.register_push_tokens()
        # storm: every device at once, through the registration queue
        storm_s = await fleet.enroll_all()
        enroll = fleet.stats.summary()["endpoints"].get("enroll", {})
        out["storm"] = {"devices": devices, "enrolled": len(fleet.by_id), "seconds": round(storm_s, 2),
                        "retries": fleet.enroll_retries, "failures": fleet.enroll_failures,
                        "statuses": enroll.get("statuses", {})}
        print(f"storm: {out['storm']}", flush=True)
        if quick:
            out["_tokens"] = [d.token for d in fleet.devices if d.token]
            out["_device_ids"] = [d.device_id for d in fleet.devices if d.device_id]
            return out

        if fanout_only:  # a short steady phase (keys acknowledged), then the fan-out
            steady_s = 10
        # steady: open loop, 10 s interval. The first 15 s (every device's first, cold-cache
        # heartbeat) are a warm-up, reported apart.
        fleet.stats = Stats()
        fleet.stop_at = time.monotonic() + steady_s + 15
        loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices if d.device_id))
        await asyncio.sleep(15)
        warm = fleet.stats.summary()["endpoints"].get("heartbeat", {})
        out["warmup"] = {k: warm.get(k) for k in ("count", "p50_ms", "p95_ms", "p99_ms")}
        print(f"warm-up: {out['warmup']}", flush=True)
        fleet.stats = Stats()
        rss_samples: list[dict[int, float]] = []

        async def sample_rss():
            while time.monotonic() < fleet.stop_at:
                rss_samples.append(rss_mb_of_tree(web_pid))
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample_rss())
        await loops
        await sampler
        hb = fleet.stats.summary()["endpoints"].get("heartbeat", {})
        latencies = sorted(fleet.stats.latencies["heartbeat"])
        errors = sum(n for (e, s), n in fleet.stats.statuses.items() if e == "heartbeat" and s != 200)
        out["steady"] = {"devices": devices, "seconds": steady_s, "requests": hb.get("count", 0), "p50_ms": hb.get("p50_ms"),
                         "p95_ms": hb.get("p95_ms"), "p99_ms": hb.get("p99_ms"), "max_ms": hb.get("max_ms"), "errors": errors,
                         "rss_max_mb": round(max((max(s.values()) for s in rss_samples if s), default=0), 1),
                         "client_lag_p99_ms": fleet.stats.summary()["client_lag_p99_ms"]}
        out["_steady_latencies"] = latencies
        print(f"steady: { {k: v for k, v in out['steady'].items()} }", flush=True)
        # The same fleet and schedule: heartbeats without `kids`, then GET /healthz (the same
        # load generator's floor, for the simulator's ratio), each after a 15 s warm-up.
        if not fanout_only:
            fleet.send_kids = False
            out["steady_no_kids"] = await _paced_phase(fleet, fleet.heartbeat_loop, "heartbeat", PHASE_S)
            fleet.send_kids = True
            out["steady_healthz"] = await _paced_phase(fleet, fleet.healthz_loop, "healthz", PHASE_S)
            print(f"steady without kids: {out['steady_no_kids']}; /healthz: {out['steady_healthz']}", flush=True)
        if skip_fanout:
            out["_tokens"] = [d.token for d in fleet.devices if d.token]
            out["_device_ids"] = [d.device_id for d in fleet.devices if d.device_id]
            return out

        # fan-out: one launch_app to every device, FANOUT_TRIALS times in a row (devices keep
        # heartbeating, pushes consumed); each time figure is the median of the trials.
        fleet.stop_at = time.monotonic() + 3600
        consumer = fleet.spawn(fleet.consume_pushes())
        loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices if d.device_id))
        trials = []
        for trial in range(FANOUT_TRIALS):
            await asyncio.sleep(2 if trial == 0 else FANOUT_GAP_S)
            trials.append(await fan_out(fleet, jwt))
        fleet.stop_at = time.monotonic()
        await loops
        consumer.cancel()
        figures = [t[0] for t in trials]
        shown = median_index([f["acked_100_s"] for f in figures])
        out["fanout"] = {**figures[shown], **{k: figures[median_index([f[k] for f in figures])][k] for k in FANOUT_TIMES},
                         "trials": [{k: f[k] for k in FANOUT_TIMES} for f in figures]}
        out["_fanout_curves"] = trials[shown][1:]  # the chart: the trial with the median 100% acked
        print(f"fanout: {out['fanout']}", flush=True)
        out["_tokens"] = [d.token for d in fleet.devices if d.token]
        out["_device_ids"] = [d.device_id for d in fleet.devices if d.device_id]
    return out


PHASE_S = float(os.environ.get("BENCH_PHASE_SECONDS", "60"))


async def _paced_phase(fleet, loop, endpoint: str, seconds: float) -> dict:
    """Every device on `loop` (its heartbeat schedule) for 15 s of warm-up, then `seconds`
    measured: the endpoint's latency figures."""
    from loadtest.simulator import Stats

    fleet.stop_at = time.monotonic() + seconds + 15
    running = asyncio.gather(*(loop(d) for d in fleet.devices if d.device_id))
    await asyncio.sleep(15)
    fleet.stats = Stats()
    await running
    e = fleet.stats.summary()["endpoints"].get(endpoint, {})
    errors = sum(n for (name, s), n in fleet.stats.statuses.items() if name == endpoint and s != 200)
    return {"requests": e.get("count", 0), "p50_ms": e.get("p50_ms"), "p95_ms": e.get("p95_ms"), "p99_ms": e.get("p99_ms"),
            "errors": errors}


async def fan_out(fleet, jwt: str) -> tuple[dict, list[float], list[float]]:
    """One launch_app to the whole fleet: its figures, and when each device received and acked it."""
    from loadtest.simulator import Stats

    fleet.stats = Stats()
    fleet.events.clear()
    async with httpx.AsyncClient(timeout=10) as client:
        fcm_cursor = (await client.get(f"{STANDIN}/_standin/stats")).json()["last"]
    t0, t0_wall = time.monotonic(), time.time()
    async with httpx.AsyncClient(timeout=60) as client:
        r = await client.post(f"{CONSOLE}/api/v1/commands", headers={"Authorization": f"Bearer {jwt}"},
                              json={"type": "launch_app", "params": {"package": "com.example.kiosk"}, "target": {"all": True}})
    issue_s = time.monotonic() - t0
    print(f"fan-out issued at {t0_wall:.3f} (epoch s), answered after {issue_s:.3f} s", flush=True)
    assert r.status_code == 201, r.text
    target = r.json()["target_count"]

    def first_times(kind):  # each device counted once (a re-posted result is not a new ack)
        first = {}
        for t, e, who in fleet.events:
            if e == kind and who not in first:
                first[who] = t - t0
        return sorted(first.values())

    while time.monotonic() - t0 < 30:
        if len(first_times("acked")) >= target:
            break
        await asyncio.sleep(0.1)
    received = first_times("received")
    acked_t = first_times("acked")
    # When PostgreSQL holds every result (the console's view; results trail the acks by up to
    # the write-behind's flush interval, commands.results): polled from the REST API after the acks.
    recorded_s = None
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() - t0 < 40:
            detail = (await client.get(f"{CONSOLE}/api/v1/commands/{r.json()['id']}", headers={"Authorization": f"Bearer {jwt}"})).json()
            if detail["counters"]["done"] >= target:
                recorded_s = round(time.monotonic() - t0, 3)
                break
            await asyncio.sleep(0.05)
    async with httpx.AsyncClient(timeout=30) as client:  # when each push reached "FCM" (the stand-in)
        sent = (await client.get(f"{STANDIN}/_standin/messages", params={"after": fcm_cursor, "limit": 100000})).json()
    at_fcm = sorted(m["at"] - t0_wall for m in sent["messages"])

    def at_fraction(times, fraction):
        n = int(round(target * fraction))
        return round(times[n - 1], 3) if len(times) >= n and n else None

    summary = fleet.stats.summary()["endpoints"].get("result", {})
    figures = {"targets": target, "api_answer_s": round(issue_s, 3),
               "received_99_s": at_fraction(received, 0.99), "received_100_s": at_fraction(received, 1.0),
               "acked_99_s": at_fraction(acked_t, 0.99), "acked_100_s": at_fraction(acked_t, 1.0),
               "recorded_100_s": recorded_s,
               "fcm_99_s": round(at_fcm[int(len(at_fcm) * 0.99) - 1], 3) if at_fcm else None,
               "fcm_100_s": round(at_fcm[-1], 3) if at_fcm else None,
               "fcm_first_s": round(at_fcm[0], 3) if at_fcm else None,
               "via_push": fleet.stats.counters.get("received_push", 0),
               "via_heartbeat": fleet.stats.counters.get("received_heartbeat", 0),
               "via_pull": fleet.stats.counters.get("received_pull", 0),
               "result_statuses": summary.get("statuses", {}), "result_p99_ms": summary.get("p99_ms")}
    print(f"fan-out trial: {figures}", flush=True)
    return figures, received, acked_t


WRK_SCRIPT = """
-- args: tokens file, mode (kids | no_kids | get), pace in ms (0: as fast as the connection goes)
local tokens = {}
local i = 0
local mode = "kids"
local pace = 0
local bodies = {
  kids = '{"battery_pct": 77, "charging": false, "network_type": "wifi", "mem_avail_mb": 1800, "kids": ["k1"]}',
  no_kids = '{"battery_pct": 77, "charging": false, "network_type": "wifi", "mem_avail_mb": 1800}',
}
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  mode = args[2] or "kids"
  pace = tonumber(args[3] or "0")
  i = math.random(#tokens)
end
function delay()
  if pace > 0 then return math.random(math.floor(pace / 2), pace + math.floor(pace / 2)) end  -- jittered, mean `pace`
  return 0
end
request = function()
  i = i % #tokens + 1
  if mode == "get" then return wrk.format("GET", nil, {}) end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Device " .. tokens[i],
    ["X-Device-Id"] = tokens[i]}, bodies[mode])
end
"""


def run_wrk(path: str, tokens_file: Path, seconds: int, connections: int, *, mode: str = "kids", pace_ms: int = 0) -> dict:
    """wrk against `path`: as fast as `connections` go (pace 0), or each connection paced to one
    request per `pace_ms` on average (an open-ish loop at connections / pace requests per second:
    the steady fleet's rate, seen by a load generator that is not the simulator)."""
    script = WORK / "heartbeat.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), BASE + path,
         "--", str(tokens_file), mode, str(pace_ms)],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def lat(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    return {"rps": round(rps), "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else "",
            "p50_ms": lat("50"), "p99_ms": lat("99"), "raw": out}


# The paced witness: PACED_CONNECTIONS keep-alive connections, each one request per PACED_MS on
# average: 200/s, the steady fleet's rate (2,000 devices @10 s).
PACED_CONNECTIONS = 200
PACED_MS = 1000
PACED_SECONDS = int(os.environ.get("BENCH_PACED_SECONDS", "30"))


def capacity(tokens: list[str], device_ids: list[str], seconds: int) -> dict:
    """Saturating rates (wrk, 64 connections): heartbeats with and without `kids`, the naive
    heartbeat, and the same server's /healthz (its floor: the ratio is what holds on a noisy
    machine); then the paced witness: the same three at the steady rate, for their tails."""
    tokens_file = WORK / "tokens.txt"
    tokens_file.write_text("\n".join(tokens) + "\n")
    ids_file = WORK / "device-ids.txt"
    ids_file.write_text("\n".join(device_ids) + "\n")
    runs = {"ours": ("/api/v1/device/heartbeat", tokens_file, "kids"),
            "no_kids": ("/api/v1/device/heartbeat", tokens_file, "no_kids"),
            # The naive view takes the device id in X-Device-Id (the same header slot in the script).
            "naive": ("/bench/naive-heartbeat", ids_file, "kids"),
            "healthz": ("/healthz", tokens_file, "get")}
    result = {}
    for name, (path, source, mode) in runs.items():
        run_wrk(path, source, 5, 64, mode=mode)  # warmed for 5 s first (token cache, connection pools)
        measured = run_wrk(path, source, seconds, 64, mode=mode)
        (WORK / f"wrk-{name}.txt").write_text(measured.pop("raw"))
        result[name] = measured
    result["ratio"] = round(result["ours"]["rps"] / max(result["naive"]["rps"], 1), 2)
    result["healthz_ratio"] = round(result["ours"]["rps"] / max(result["healthz"]["rps"], 1), 2)
    result["no_kids_ratio"] = round(result["no_kids"]["rps"] / max(result["ours"]["rps"], 1), 2)
    paced = {}
    for name in ("ours", "no_kids", "healthz"):
        path, source, mode = runs[name]
        measured = run_wrk(path, source, PACED_SECONDS, PACED_CONNECTIONS, mode=mode, pace_ms=PACED_MS)
        (WORK / f"wrk-paced-{name}.txt").write_text(measured.pop("raw"))
        paced[name] = measured
    # Alerting's cost on the tail (issue 18: "the steady-heartbeat p99 does not move beyond
    # noise"): the same paced heartbeats with every rule off (the 5 s sweep then evaluates nothing).
    from mdm.alerts.models import AlertRule

    enabled = list(AlertRule.objects.filter(enabled=True).values_list("pk", flat=True))
    AlertRule.objects.filter(pk__in=enabled).update(enabled=False)
    try:
        measured = run_wrk(runs["ours"][0], tokens_file, PACED_SECONDS, PACED_CONNECTIONS, mode="kids", pace_ms=PACED_MS)
    finally:
        AlertRule.objects.filter(pk__in=enabled).update(enabled=True)
    (WORK / "wrk-paced-alerts-off.txt").write_text(measured.pop("raw"))
    paced["alerts_off"] = measured
    result["paced"] = paced
    print(f"capacity: {result}", flush=True)
    return result


def seed_console(total_devices: int, history_days: int) -> str:
    """Pads the fleet to total_devices and gives one device history_days of 10 s history."""
    from django.db import connection
    from django.utils import timezone

    from devices import partitions
    from devices.models import Device, DeviceStatus

    existing = Device.objects.count()
    now = timezone.now()
    batch = []
    for i in range(existing, total_devices):
        batch.append(Device(hardware_id=f"pad-{i:06d}", model="SimTab 10", manufacturer="Simulated", android_version="14"))
    created = Device.objects.bulk_create(batch, batch_size=2000)
    DeviceStatus.objects.bulk_create(
        [DeviceStatus(device=d, last_seen=now, online=i % 5 != 0, battery_pct=i % 100, network_type="wifi") for i, d in enumerate(created)],
        batch_size=2000,
    )
    viewed = Device.objects.filter(hardware_id__startswith="sim-").order_by("hardware_id").first()
    if viewed is None:  # --alerts-only: no simulated fleet of that name, no history to show
        return ""
    for back in range(history_days + 1):
        partitions.ensure_partition(now.date() - timezone.timedelta(days=back)) if hasattr(partitions, "ensure_partition") else None
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO devices_heartbeatsample (device_id, at, battery_pct, charging, mem_avail_mb, storage_free_mb, network_type, wifi_rssi)
            SELECT %s, ts, (50 + 40 * sin(extract(epoch from ts) / 20000))::int, false, 1500, 30000, 'wifi', -60
            FROM generate_series(%s::timestamptz - make_interval(days => %s), %s::timestamptz - interval '20 seconds', interval '10 seconds') AS ts
            ON CONFLICT DO NOTHING
            """,
            [viewed.pk, now, history_days, now],
        )
        cursor.execute("ANALYZE")
    return str(viewed.pk)


def console(device_id: str, requests: int) -> dict:
    client = httpx.Client(base_url=CONSOLE, timeout=30, follow_redirects=False)
    client.get("/accounts/login/")
    r = client.post("/accounts/login/", data={"username": "bench-admin", "password": "bench-Passphrase-1",
                                               "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                    headers={"Referer": CONSOLE + "/accounts/login/"})
    assert r.status_code == 302, r.status_code
    pages = {"devices list": "/devices/", "devices list, filtered": "/devices/?status=online&battery_below=50",
             "device detail (30 days)": f"/devices/{device_id}/"}
    out = {}
    for name, path in pages.items():
        assert client.get(path).status_code == 200, path  # warm
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
        out[name] = {"p50_ms": round(statistics.median(times) * 1000, 1), "p95_ms": round(percentile(times, 95) * 1000, 1)}
    print(f"console: {out}", flush=True)
    return out


# --- report ----------------------------------------------------------------------------------
CALIBRATION: dict = {"s": None}


def cpu_calibration() -> float:
    """Seconds for a fixed pure-Python loop (median of three), taken with nothing else running: this
    shared virtual machine's speed varies by day (the same code measured 3x apart), so a results
    file says how fast the machine was when it was written."""
    def once() -> float:
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        return time.perf_counter() - started

    return round(statistics.median(once() for _ in range(3)), 2)


def upload(web_pid: int, worker_pid: int | None = None, size_mb: int = UPLOAD_MB) -> dict:
    """A valid signed APK of `size_mb` MB (one stored random asset; tests/fixtures/apks/build.sh
    big) uploaded with tuspy (the tus client CI uses) in 5 MB PATCHes with SHA-1 checksums, by an
    API key with apk:upload, while the serving processes' RSS (`web_pid`: the console's, where
    nginx sends uploads) is sampled every 0.1 s. Then the
    worker parses and stores it; the release must come out with the file's SHA-256."""
    import hashlib
    import threading

    from tusclient import client as tus_client

    from accounts import services as accounts
    from accounts.models import User

    apk = WORK / f"bench-upload-{size_mb}mb.apk"
    started = time.monotonic()
    subprocess.run(["bash", str(ROOT / "tests" / "fixtures" / "apks" / "build.sh"), "big", str(apk), str(size_mb),
                    str(int(time.time()))], check=True, capture_output=True)
    built_s = time.monotonic() - started
    digest = hashlib.sha256()
    with open(apk, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    size = apk.stat().st_size
    key = accounts.create_api_key(actor=User.objects.get(username="bench-admin"), name="bench-ci", scopes=["apk:upload"]).raw
    headers = {"Authorization": f"Api-Key {key}"}
    samples: list[dict[int, float]] = []
    worker_samples: list[dict[int, float]] = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            samples.append(rss_mb_of_tree(web_pid))
            if worker_pid:
                worker_samples.append(rss_mb_of_tree(worker_pid))
            time.sleep(0.1)

    baseline = rss_mb_of_tree(web_pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    uploader = tus_client.TusClient(f"{CONSOLE}/api/v1/uploads/", headers=headers).uploader(
        file_path=str(apk), chunk_size=UPLOAD_CHUNK_MB * 1024 * 1024, metadata={"filename": apk.name, "channel": "beta"},
        upload_checksum=True)
    started = time.monotonic()
    uploader.upload()
    upload_s = time.monotonic() - started
    result, deadline = {}, time.monotonic() + 300
    while time.monotonic() < deadline:
        result = httpx.get(uploader.url + "/result", headers=headers, timeout=10).json()
        if result.get("state") in ("done", "refused"):
            break
        time.sleep(0.5)
    stored_s = time.monotonic() - started
    done.set()
    sampler.join()
    apk.unlink()
    peak = max((max(s.values()) for s in samples if s), default=0)
    out = {"size_mb": round(size / 1e6, 1), "chunk_mb": UPLOAD_CHUNK_MB, "seconds": round(upload_s, 2),
           "throughput_mb_s": round(size / 1e6 / upload_s, 1), "release_stored_after_s": round(stored_s, 2),
           "state": result.get("state"), "sha256_ok": result.get("release", {}).get("sha256") == digest.hexdigest(),
           "web_rss_before_mb": round(max(baseline.values(), default=0), 1), "web_rss_peak_mb": round(peak, 1),
           "web_processes": len(baseline), "apk_built_s": round(built_s, 1),
           # The parse (pyaxmlparser reads the whole APK to find its signing block) runs in the worker.
           "worker_rss_peak_mb": round(max((max(s.values()) for s in worker_samples if s), default=0), 1)}
    print(f"upload: {out}", flush=True)
    return out


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}, {pg}, Redis 7; "
            f"CPU calibration (10M-iteration Python loop, before the run) {CALIBRATION['s']} s")


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    lat = [v * 1000 for v in results["_steady_latencies"]]
    if lat:
        a.plot(lat, [i / len(lat) * 100 for i in range(1, len(lat) + 1)], color="#2563eb")
        for p, style in ((95, "--"), (99, ":")):
            a.axvline(percentile(lat, p), color="#dc2626", linestyle=style, label=f"p{p} {percentile(lat, p):.1f} ms")
    a.set_xscale("log")
    a.set_xlabel("heartbeat latency (ms, log)")
    a.set_ylabel("% of requests")
    a.set_title(f"steady: {results['steady']['devices']} devices @10 s, open loop")
    a.legend(loc="lower right")
    a.grid(alpha=0.3)
    received, acked = results["_fanout_curves"]
    target = results["fanout"]["targets"] or 1
    b.plot(received, [i / target * 100 for i in range(1, len(received) + 1)], label="received", color="#2563eb")
    b.plot(acked, [i / target * 100 for i in range(1, len(acked) + 1)], label="acked", color="#059669")
    b.set_xlabel("seconds after the API call")
    b.set_ylabel("% of devices")
    b.set_title(f"fan-out: launch_app to {target} devices (the median trial of {len(results['fanout']['trials'])})")
    b.legend(loc="lower right")
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _ok(value, goal, lower=True):
    return value is not None and (value <= goal if lower else value >= goal)


def heartbeat_rows(results: dict) -> list[tuple[str, str, str, bool]]:
    """The simulator's steady figure, the paced wrk witness and the capacities (issue 20)."""
    s, c = results["steady"], results["capacity"]
    # The floor the simulator's figures are held to: /healthz under the same simulator's schedule
    # (every run but --fanout-only measures it), else wrk's paced /healthz.
    floor = (results.get("steady_healthz") or c["paced"]["healthz"])["p99_ms"]
    by = "the simulator's" if results.get("steady_healthz") else "wrk's paced"
    ok = _ok

    def steady_row(label, r):
        return (f"steady heartbeats, 2,000 devices @10 s (simulator){label}",
                f"p95 ≤ {GOALS['steady_p95_ms']} ms, p99 ≤ {GOALS['steady_p99_ms']} ms and ≤ {GOALS['steady_healthz_x']}x /healthz p99, 0 errors",
                f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms "
                f"({_x(r['p99_ms'], floor)}x {by} /healthz p99 {floor} ms), {r['errors']} errors of {r['requests']}",
                ok(r["p95_ms"], GOALS["steady_p95_ms"]) and ok(r["p99_ms"], GOALS["steady_p99_ms"]) and r["errors"] == 0
                and ok(_x(r["p99_ms"], floor), GOALS["steady_healthz_x"]))

    return [
        steady_row("", s),
        *([steady_row(", without `kids`", results["steady_no_kids"])] if results.get("steady_no_kids") else []),
        *paced_rows(c),
        ("capacity (wrk, 64 connections)",
         f"≥ {GOALS['capacity_rps']} heartbeats/s, ≥ {GOALS['capacity_healthz_ratio']:.0%} of /healthz, ≥ {GOALS['capacity_ratio']}x naive",
         f"{c['ours']['rps']}/s = {c['healthz_ratio']:.0%} of /healthz's {c['healthz']['rps']}/s; naive {c['naive']['rps']}/s "
         f"= {c['ratio']}x ({c['ours']['non_2xx']} non-2xx)",
         ok(c["ours"]["rps"], GOALS["capacity_rps"], lower=False) and ok(c["ratio"], GOALS["capacity_ratio"], lower=False)
         and ok(c["healthz_ratio"], GOALS["capacity_healthz_ratio"], lower=False)),
        ("capacity without `kids`", f"≥ {GOALS['no_kids_ratio']:.0%} of the rate with them",
         f"{c['no_kids']['rps']}/s = {c['no_kids_ratio']:.0%} of {c['ours']['rps']}/s ({c['no_kids']['non_2xx']} non-2xx)",
         ok(c["no_kids_ratio"], GOALS["no_kids_ratio"], lower=False) and c["no_kids"]["non_2xx"] == 0),
    ]


def table(results: dict) -> list[tuple[str, str, str, bool]]:
    f, st, con = results["fanout"], results["storm"], results["console"]
    s = results["steady"]

    def spread(key):
        return " / ".join(str(t[key]) for t in f["trials"])

    worst_console = max(v["p95_ms"] for v in con.values())
    ok = _ok

    return [
        *heartbeat_rows(results),
        ("fan-out to 2,000", f"99% received ≤ {GOALS['fanout_99_received_s']} s, 100% acked ≤ {GOALS['fanout_100_acked_s']} s",
         f"median of {len(f['trials'])} trials: 99% received {f['received_99_s']} s, 100% {f['received_100_s']} s, "
         f"100% acked {f['acked_100_s']} s (trials: received {spread('received_99_s')} s, acked {spread('acked_100_s')} s; "
         f"{f['via_push']} by push in the charted one); all {f['targets']} results in PostgreSQL after {f.get('recorded_100_s')} s",
         ok(f["received_99_s"], GOALS["fanout_99_received_s"]) and ok(f["acked_100_s"], GOALS["fanout_100_acked_s"])),
        ("storm of 2,000", f"all enrolled ≤ {GOALS['storm_all_enrolled_s']:.0f} s, 0 failures",
         f"{st['enrolled']} enrolled in {st['seconds']} s, {st['retries']} retries, {st['failures']} failures",
         st["enrolled"] == st["devices"] and ok(st["seconds"], GOALS["storm_all_enrolled_s"]) and st["failures"] == 0),
        ("console with 20,000 devices", f"p95 ≤ {GOALS['console_p95_ms']} ms per page",
         "; ".join(f"{k}: p95 {v['p95_ms']} ms" for k, v in con.items()), ok(worst_console, GOALS["console_p95_ms"])),
        ("memory", f"web process RSS ≤ {GOALS['web_rss_mb']} MB", f"max {s['rss_max_mb']} MB per process",
         ok(s["rss_max_mb"], GOALS["web_rss_mb"])),
        *upload_rows(results),
        *install_fanout.rows(results),
        *policy_fanout.rows(results),
        *alerts.rows(results),
    ]


def _x(value, floor):
    return round(value / floor, 2) if value is not None and floor else None


def paced_rows(c: dict) -> list:
    """The wrk witness at the steady rate: the heartbeat's tail beside /healthz's, same load."""
    p = c["paced"]
    floor = p["healthz"]["p99_ms"]
    rows = []
    for name, label in (("ours", "with `kids`"), ("no_kids", "without `kids`")):
        r = p[name]
        rows.append((f"steady rate by wrk ({PACED_CONNECTIONS} connections, {r['rps']}/s), heartbeats {label}",
                     f"p99 ≤ {GOALS['steady_p99_ms']} ms and ≤ {GOALS['steady_healthz_x']}x /healthz p99",
                     f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms ({_x(r['p99_ms'], floor)}x /healthz's {floor} ms); {r['non_2xx']} non-2xx",
                     r["p99_ms"] is not None and r["p99_ms"] <= GOALS["steady_p99_ms"]
                     and _x(r["p99_ms"], floor) <= GOALS["steady_healthz_x"] and r["non_2xx"] == 0))
    on, off = p["ours"], p["alerts_off"]
    rows.append(("alerting's cost on that tail (every seeded rule on, against all off, same run)",
                 f"p99 on ≤ {GOALS['alerts_tail_x']}x p99 off",
                 f"p99 {on['p99_ms']} ms on, {off['p99_ms']} ms off ({_x(on['p99_ms'], off['p99_ms'])}x)",
                 _x(on["p99_ms"], off["p99_ms"]) is not None and _x(on["p99_ms"], off["p99_ms"]) <= GOALS["alerts_tail_x"]))
    return rows


def upload_rows(results: dict) -> list:
    u = results.get("upload")
    if not u:
        return []
    return [(f"APK upload, {u['size_mb']} MB by tus in {u['chunk_mb']} MB chunks", f"serving process (console) RSS ≤ {GOALS['upload_web_rss_mb']} MB, release stored",
             f"{u['throughput_mb_s']} MB/s ({u['seconds']} s), release stored after {u['release_stored_after_s']} s "
             f"(sha256 {'ok' if u['sha256_ok'] else 'WRONG'}); console RSS {u['web_rss_before_mb']} -> peak {u['web_rss_peak_mb']} MB per process (worker peak {u.get('worker_rss_peak_mb')} MB: the parse)",
             u["state"] == "done" and u["sha256_ok"] and u["web_rss_peak_mb"] <= GOALS["upload_web_rss_mb"])]


def write_report(results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    png = RESULTS / f"{day}.png"
    chart(results, png)
    rows = table(results)
    lines = [
        f"# Benchmarks, {day}",
        "",
        f"Machine: {machine()}. Everything on this one machine: PostgreSQL, Redis, the web set-up of",
        f"docker-compose.yml (devices: `web`, `{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(compose_web_command(WEB_PORT)))}`;",
        f"policy fetches and reports: `sync`, scheduling-group nice {compose_nice('sync')} as its `cpu_shares`;",
        "the admin API, pages and uploads: `console`), its Celery `worker`,",
        f"`dispatcher` (CPU weight as its `cpu_shares`: scheduling-group nice {compose_nice('dispatcher')}) and `beat`, the FCM stand-in, and the load generators",
        f"(the fleet simulator; wrk for capacity). The stand-in and the simulator run at scheduling-group nice {HARNESS_NICE[2] if HARNESS_NICE else 0}",
        "(they stand for Google and the phones; docs/performance.md). Reproduce: `make bench`.",
        "",
        "| figure | goal | measured | |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {'✅' if d else '❌'} |" for a, b, c, d in rows],
        "",
        f"![latency and fan-out]({png.name})",
        "",
        "## Raw figures",
        "```json",
        json.dumps({k: v for k, v in results.items() if not k.startswith("_")}, indent=2),
        "```",
    ]
    path = RESULTS / f"{day}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--steady-seconds", type=float, default=120)
    parser.add_argument("--capacity-seconds", type=int, default=20)
    parser.add_argument("--console-devices", type=int, default=20000)
    parser.add_argument("--console-requests", type=int, default=40)
    parser.add_argument("--capacity-only", action="store_true", help="storm then capacity, for profiling")
    parser.add_argument("--fanout-only", action="store_true", help="storm then fan-out, for profiling")
    parser.add_argument("--heartbeat-only", action="store_true",
                        help="storm, steady and capacity (with and without kids, /healthz, the paced wrk witness)")
    parser.add_argument("--upload-only", action="store_true", help="only the APK upload (BENCH_UPLOAD_MB, default 200)")
    parser.add_argument("--install-only", action="store_true",
                        help="only the install fan-out (--devices, BENCH_INSTALL_MB 20, BENCH_INSTALL_CUT_RATE 0.1)")
    parser.add_argument("--policy-only", action="store_true", help="only the policy fan-out (--devices, BENCH_POLICY_TRIALS 3)")
    parser.add_argument("--alerts-only", action="store_true",
                        help="only alerting: evaluation over --console-devices, then 10%% of --devices going offline")
    parser.add_argument("--sizing-only", action="store_true",
                        help="only the sizing pieces, no server (bench/sizing.py; BENCH_SIZING_DEVICES, default 200000)")
    args = parser.parse_args()
    CALIBRATION["s"] = cpu_calibration()
    print(f"CPU calibration: {CALIBRATION['s']} s for a 10M-iteration Python loop", flush=True)
    if args.sizing_only:
        fresh_store()
        django_setup()
        measured = sizing.measure(int(os.environ.get("BENCH_SIZING_DEVICES", "200000")))
        print(sizing.write_report(RESULTS, measured, machine()).read_text().split("## Raw figures")[0])
        return 0
    if not (args.policy_only or args.alerts_only):  # no downloads in them
        use_nginx()
    procs = Processes()

    def nginx_pid():
        return procs.procs["nginx"].pid if "nginx" in procs.procs else None

    try:
        prepare(procs)
        django_setup()
        enroll_key, jwt = make_admin_and_key()
        if args.upload_only:
            measured = upload(procs.procs["console"].pid, procs.procs["worker"].pid)
            print("\n".join(f"| {a} | {b} | {c} | {'✅' if d else '❌'} |" for a, b, c, d in upload_rows({"upload": measured})))
            return 0
        if args.install_only:
            measured = install(enroll_key, jwt, args.devices, procs.procs["web"].pid, nginx_pid())
            print("\n".join(f"| {a} | {b} | {c} | {'✅' if d else '❌'} |"
                            for a, b, c, d in install_fanout.rows({"install": measured})))
            return 0
        if args.policy_only:
            measured = policy(enroll_key, jwt, args.devices)
            path = policy_fanout.write_report(RESULTS, measured, machine(), json.dumps(measured, indent=2))
            print(path.read_text().split("## Raw figures")[0])
            return 0
        if args.alerts_only:
            measured = {"alerts_offline": asyncio.run(alerts.run_offline(base_url=BASE, standin_url=STANDIN, enroll_key=enroll_key,
                                                                         devices=args.devices))}
            seed_console(args.console_devices, 0)
            measured["alerts_eval"] = alerts.evaluation(args.console_devices, alone=paused(procs))
            print(json.dumps(measured, indent=2))
            print("\n".join(f"| {a} | {b} | {c} | {'✅' if d else '❌'} |" for a, b, c, d in alerts.rows(measured)))
            return 0
        results = asyncio.run(storm_steady_fanout(enroll_key, jwt, args.devices, args.steady_seconds, procs.procs["web"].pid,
                                                  quick=args.capacity_only, fanout_only=args.fanout_only,
                                                  skip_fanout=args.heartbeat_only))
        if args.fanout_only:
            return 0
        results["capacity"] = capacity(results.pop("_tokens"), results.pop("_device_ids"), args.capacity_seconds)
        if args.heartbeat_only:
            results.pop("_steady_latencies", None)
            rows = heartbeat_rows(results)
            print(json.dumps(results, indent=2))
            print("\n".join(f"| {a} | {b} | {c} | {'✅' if d else '❌'} |" for a, b, c, d in rows))
            return 0
        if args.capacity_only:
            if os.environ.get("BENCH_HOLD"):
                input("set-up running; Enter stops it ")
            return 0
        viewed = seed_console(args.console_devices, 30)
        results["console"] = console(viewed, args.console_requests)
        results["upload"] = upload(procs.procs["console"].pid, procs.procs["worker"].pid)
        results["install"] = install(enroll_key, admin_jwt(), args.devices, procs.procs["web"].pid, nginx_pid())
        results["policy"] = policy(enroll_key, admin_jwt(), args.devices)
        results["alerts_offline"] = asyncio.run(alerts.run_offline(base_url=BASE, standin_url=STANDIN, enroll_key=enroll_key,
                                                                   devices=args.devices))
        results["alerts_eval"] = alerts.evaluation(args.console_devices, alone=paused(procs))
        results["cpu_calibration_s"] = CALIBRATION["s"]
        path = write_report(results)
    finally:
        procs.stop_all()
    print()
    print(path.read_text().split("## Raw figures")[0])
    return 0


if __name__ == "__main__":
    # The harness's event loop (the simulator's 2,000 phones, the admin calls): uvloop, so the load
    # generator takes less of the cores it shares with the server (docs/performance.md, "The harness").
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sys.exit(main())
