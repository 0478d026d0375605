"""The Fleet: thousands of simulated Android agents in one asyncio process, speaking PROTOCOL.md
as a device does: enroll with backoff (and wait for an admin's approval of a re-enrollment),
heartbeat with drifting telemetry and jitter, pull, and (commands.py, push.py, installer.py,
policy.py) verify and run commands, take pushes from the FCM stand-in, download and install APKs,
fetch, verify, apply and report the device's policy."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from typing import Any, Sequence

import aiohttp

from loadtest.simulator.commands import CommandRunner
from loadtest.simulator.device import SimDevice
from loadtest.simulator.installer import ApkInstaller, FailureRule
from loadtest.simulator.policy import PolicyClient
from loadtest.simulator.protocol import backoff_delay, retry_after_of
from loadtest.simulator.push import PushConsumer
from loadtest.simulator.stats import Stats

GC_THRESHOLDS = (100_000, 50, 100)  # CPython's default is (700, 10, 10); see settle_gc
# The floor of the wait after an answer only an admin can change (a re-enrollment waiting for
# approval), as the agent's: the jittered backoff comes on top.
REFUSED_RETRY_S = 30.0


def settle_gc() -> None:
    """Once the fleet is enrolled, in a process the simulator owns (`simulate_fleet`, the bench):
    its state is long-lived (devices, keys, sessions: ~150,000 objects for 2,000 devices), and a
    fan-out makes ~100,000 short-lived ones at once (a task, a request and a response per
    device). With CPython's default thresholds the collector's passes over all of that paused
    every simulated device at once, ~500 ms per fan-out in all, the longest 190-300 ms
    (gc.callbacks, bench runs of 2026-12-02): the phones' lag, counted as the server's. Frozen
    out of the collector, with collections less often: one or two ~140 ms passes per fan-out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Fleet(CommandRunner, PushConsumer, PolicyClient):
    """`devices` simulated agents against `base_url`, enrolled with `enroll_key`. Use as an async
    context manager (its HTTP sessions), or `run()` for enroll-then-heartbeat for `duration` s.

    Behaviour knobs:
    - `interval`: heartbeat interval (default: the server's); `exec_scale` multiplies simulated
      execution times; `failure_rate` replaces the failure probability of every simulated type
      (not install_apk, which fails for real reasons or by `install_failures`).
    - `install_failures`: which installs fail after a good download, as PackageManager can
      (storage, a bad split): a dict {apk_id or package: probability}, e.g. {release_id: 0.1}
      makes that release fail on about 10% of devices; or a callable (device, payload) -> error
      text or None, for an exact set of devices.
    - `download_cut_rate`: the fraction of APK downloads dropped once after a random number of
      bytes, then resumed with Range/If-Range after a backoff (counted: apk_download_cut,
      apk_resumed, apk_restarted when the server sent the whole file again).
    - `download_concurrency`: at most this many APK transfers at once (None: no cap). Downloads
      have their own connection pool, so they never hold back heartbeats and results.
    - `routes`: (path prefix, base URL) pairs sent elsewhere than `base_url`, first match wins:
      what the proxy in front of a server does when the simulator talks to its planes directly
      (bench/run.py, as deploy/nginx.conf routes).
    Counters (`stats.counters`) of installs: apk_downloaded, apk_checksum_ok, apk_checksum_mismatch,
    apk_installed, apk_refused (a downgrade), apk_install_failed, apk_download_failed, apk_bytes;
    `installer.downloads` holds each good download's SHA-256 as the device computed it; `events`
    holds (monotonic time, "received" | "downloaded" | "acked", "<hardware id>/<command id>") and
    (monotonic time, "policy_fetched" | "policy_applied" | "policy_reported", "<hardware id>/<version>").
    Counters of the policy channel: policy_fetch_by_heartbeat, policy_fetch_by_push, policy_fetched,
    policy_bad, policy_applied, policy_item_<state>, policy_reported.
    """

    def __init__(
        self,
        *,
        base_url: str,
        enroll_key: str,
        devices: int,
        interval: float | None = None,
        duration: float = 60.0,
        hardware_prefix: str = "sim",
        enroll_concurrency: int = 200,
        failure_rate: float | None = None,
        exec_scale: float = 1.0,
        push_url: str | None = None,
        seed: int = 1,
        max_connections: int = 400,
        verbose: bool = False,
        owns_process: bool = False,
        refused_retry_s: float = REFUSED_RETRY_S,
        install_failures: FailureRule | None = None,
        download_cut_rate: float = 0.0,
        download_concurrency: int | None = 200,
        routes: Sequence[tuple[str, str]] = (),
    ):
        self.base_url = base_url.rstrip("/")
        self.routes = [(prefix, base.rstrip("/")) for prefix, base in routes]
        self.enroll_key = enroll_key
        self.count = devices
        self.interval_override = interval
        self.duration = duration
        self.enroll_concurrency = enroll_concurrency
        self.failure_rate = failure_rate
        self.exec_scale = exec_scale
        self.push_url = push_url.rstrip("/") if push_url else None
        self.rng = random.Random(seed)
        self.max_connections = max_connections
        self.verbose = verbose
        self.owns_process = owns_process  # the collector may be tuned for it (settle_gc)
        self.refused_retry_s = refused_retry_s
        self.send_kids = True  # False: heartbeats leave out `kids` (answered command_keys every time)
        self.stats = Stats()
        self.devices = [
            SimDevice(index=i, hardware_id=f"{hardware_prefix}-{i:06d}", fcm_token=f"{hardware_prefix}-fcm-{i:06d}")
            for i in range(devices)
        ]
        for d in self.devices:
            d.battery = self.rng.uniform(20, 100)
            d.storage_free = d.storage_total * self.rng.uniform(0.2, 0.8)
        self.by_id: dict[str, SimDevice] = {}
        self.by_fcm: dict[str, SimDevice] = {d.fcm_token: d for d in self.devices}
        self.session: aiohttp.ClientSession | None = None
        self.download_session: aiohttp.ClientSession | None = None
        self.installer = ApkInstaller(self, failures=install_failures, cut_rate=download_cut_rate,
                                      concurrency=download_concurrency)
        self.stop_at = 0.0
        self.enroll_retries = 0
        self.enroll_failures = 0
        # (monotonic, "received" | "downloaded" | "acked", "<hardware id>/<command id>") for benchmarks
        self.events: list[tuple[float, str, str]] = []

    # -- HTTP -----------------------------------------------------------------------------------
    def url_of(self, path: str) -> str:
        for prefix, base in self.routes:
            if path.startswith(prefix):
                return base + path
        return self.base_url + path

    async def call(self, endpoint: str, method: str, path: str, *, device: SimDevice | None = None,
                   body: Any = None, headers: dict | None = None, started: float | None = None):
        """One request; returns (status, json body or None, retry_after). Network errors → 0."""
        assert self.session is not None
        started = time.monotonic() if started is None else started
        hdrs = {"Accept": "application/json", **(device.headers if device else {}), **(headers or {})}
        try:
            async with self.session.request(method, self.url_of(path), json=body, headers=hdrs) as response:
                data = await response.json(content_type=None) if response.status != 204 else None
                status, retry_after = response.status, retry_after_of(response)
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            self.stats.record(endpoint, 0, time.monotonic() - started, started)
            if self.verbose:
                print(f"{endpoint}: {type(exc).__name__}: {exc}")
            return 0, None, None
        self.stats.record(endpoint, status, time.monotonic() - started, started)
        return status, data, retry_after

    # -- enrollment -----------------------------------------------------------------------------
    async def enroll(self, device: SimDevice, gate: asyncio.Semaphore) -> bool:
        """POST /api/v1/enroll until it succeeds, backing off on 429/503 and network errors. A known
        device is let in by its current token (sent whenever the device holds one: a re-key) or,
        PROTOCOL.md v1.1, by an admin's approval of the request a 409 reenroll_needs_approval names:
        that id is kept and carried by every repeat, at the refused floor plus the jittered
        backoff, until one succeeds; a later 409 may name a new one (the old one was spent)."""
        attempt = 0
        await gate.acquire()
        try:
            while time.monotonic() < self.stop_at:
                headers = {"X-Admin-Key": self.enroll_key}
                if device.token:
                    headers["Authorization"] = f"Device {device.token}"
                status, data, retry_after = await self.call(
                    "enroll", "POST", "/api/v1/enroll", body=self.enroll_body(device), headers=headers
                )
                if status in (200, 201):
                    device.reenroll_request = None
                    self.adopt_enrollment(device, data)
                    self.stats.counters["enrolled"] += 1
                    return True
                if status in (0, 429, 503):
                    self.enroll_retries += 1
                    await asyncio.sleep(backoff_delay(attempt, retry_after))
                    attempt += 1
                    continue
                if status == 409 and (data or {}).get("code") == "reenroll_needs_approval":
                    request_id = data.get("reenroll_request")
                    if isinstance(request_id, str) and request_id != device.reenroll_request:
                        device.reenroll_request = request_id
                        self.stats.counters["reenroll_requests"] += 1
                    self.stats.counters["reenroll_waits"] += 1
                    # Waiting for a person: the slot goes to devices that can enroll meanwhile.
                    gate.release()
                    try:
                        await asyncio.sleep(self.refused_retry_s + backoff_delay(attempt, retry_after))
                    finally:
                        await gate.acquire()
                    attempt += 1
                    continue
                self.enroll_failures += 1
                self.stats.counters[f"enroll_failed_{status}"] += 1
                return False
            return False
        finally:
            gate.release()

    def enroll_body(self, device: SimDevice) -> dict:
        body = {
            "hardware_id": device.hardware_id,
            "serial": device.hardware_id.upper(),
            "model": "SimTab 10",
            "manufacturer": "Simulated",
            "android_version": "14",
            "sdk_int": 34,
            "agent_version": "sim-1.0",
            "fcm_token": device.fcm_token if self.push_url else "",
        }
        if device.reenroll_request:
            body["reenroll_request"] = device.reenroll_request
        return body

    async def reenroll(self, device: SimDevice) -> None:
        """PROTOCOL.md: re-enroll only on token_invalid, at most once an hour (an attempt waiting
        for an admin's approval is that one re-enrollment, still going)."""
        if time.monotonic() - device.last_reenroll < 3600:
            return
        device.last_reenroll = time.monotonic()
        self.stats.counters["reenrolled"] += 1
        device.device_id = None
        await self.enroll(device, asyncio.Semaphore(1))

    def adopt_enrollment(self, device: SimDevice, data: dict) -> None:
        device.device_id, device.token = data["device_id"], data["device_token"]
        device.headers = {"Authorization": f"Device {device.token}"}
        device.set_keys(data["command_keys"])
        device.interval = float(self.interval_override or data["heartbeat_interval_s"])
        device.learn_time(data["server_time"])
        self.by_id[device.device_id] = device

    # -- heartbeat ------------------------------------------------------------------------------
    async def heartbeat(self, device: SimDevice, scheduled: float) -> None:
        if device.reenroll_request is not None:
            return  # its token was refused and its re-enrollment waits for an admin: nothing to send
        lag = time.monotonic() - scheduled
        self.stats.lag.append(max(0.0, lag))
        self.stats.lag_at.append(scheduled)
        body = device.telemetry(self.rng)
        if not self.send_kids:  # an agent that lost its state, or an older one (PROTOCOL.md: kids optional)
            body.pop("kids", None)
        status, data, _ = await self.call("heartbeat", "POST", "/api/v1/device/heartbeat", device=device, body=body,
                                          started=scheduled)
        if status == 401 and (data or {}).get("code") == "token_invalid":
            await self.reenroll(device)
            return
        if status != 200:
            return
        device.bad_envelopes = 0  # reported
        device.learn_time(data["server_time"])
        if not self.interval_override:
            device.interval = float(data["heartbeat_interval_s"])
        if data.get("command_keys"):
            device.set_keys(data["command_keys"])
        for command_id in data.get("cancelled", []):
            self.drop_if_not_started(device, command_id)
        self.accept_envelopes(device, data.get("commands", []), channel="heartbeat")
        self.policy_after_heartbeat(device, data.get("policy_version"))
        if data.get("more_commands"):
            await self.pull(device)
        if data.get("inventory_requested"):
            await self.send_inventory(device)

    async def healthz_loop(self, device: SimDevice) -> None:
        """The heartbeat loop's schedule and connections, calling GET /healthz instead: the same
        load generator's view of the server's floor (bench/run.py --heartbeat-only)."""
        next_due = time.monotonic() + self.rng.uniform(0, device.interval)
        pending: set[asyncio.Task] = set()
        while next_due < self.stop_at:
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
            task = asyncio.create_task(self.call("healthz", "GET", "/healthz", started=next_due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_due += device.interval * self.rng.uniform(0.9, 1.1)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def heartbeat_loop(self, device: SimDevice) -> None:
        # Open loop: each beat leaves on schedule whether or not the previous answer came back.
        next_due = time.monotonic() + self.rng.uniform(0, device.interval)
        pending: set[asyncio.Task] = set()
        while next_due < self.stop_at:
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
            task = asyncio.create_task(self.heartbeat(device, next_due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_due += device.interval * self.rng.uniform(0.9, 1.1)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def send_inventory(self, device: SimDevice) -> tuple[int, float | None]:
        """PUT /api/v1/device/inventory from the device's installed map; (status, Retry-After)."""
        status, _, retry_after = await self.call("inventory", "PUT", "/api/v1/device/inventory", device=device,
                                                 body={"apps": device.inventory()})
        return status, retry_after

    async def pull(self, device: SimDevice) -> None:
        status, data, _ = await self.call("pull", "GET", "/api/v1/device/commands?limit=100", device=device)
        if status == 200:
            self.accept_envelopes(device, data.get("commands", []), channel="pull")

    # -- orchestration --------------------------------------------------------------------------
    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def __aenter__(self) -> "Fleet":
        connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        # limit=0: the download gate (download_concurrency) is the cap, not the pool.
        self.download_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300))
        self._tasks: set[asyncio.Task] = set()
        self.stop_at = time.monotonic() + self.duration
        return self

    async def __aexit__(self, *exc) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in (self.session, self.download_session):
            if session is not None:
                await session.close()

    async def enroll_all(self) -> float:
        gate = asyncio.Semaphore(self.enroll_concurrency)
        started = time.monotonic()
        await asyncio.gather(*(self.enroll(d, gate) for d in self.devices if d.device_id is None))
        elapsed = time.monotonic() - started
        if self.owns_process:
            settle_gc()
        return elapsed

    async def run(self) -> dict:
        """Enroll every device, then heartbeat until the duration is over; returns the report."""
        async with self:
            if self.push_url:
                await self.register_push_tokens()
            enroll_s = await self.enroll_all()
            consumer = self.spawn(self.consume_pushes()) if self.push_url else None
            await asyncio.gather(*(self.heartbeat_loop(d) for d in self.devices if d.device_id))
            # Let running commands finish and their results land.
            deadline = time.monotonic() + 10
            while any(d.queue or (d.runner and not d.runner.done()) for d in self.devices) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if consumer:
                consumer.cancel()
        return self.report_dict(enroll_s)

    def report_dict(self, enroll_s: float) -> dict:
        report = self.stats.summary()
        report.update(
            devices=self.count,
            enrolled=len(self.by_id),
            enroll_seconds=round(enroll_s, 2),
            enroll_retries=self.enroll_retries,
            enroll_failures=self.enroll_failures,
        )
        return report

