"""Fleet simulator: thousands of simulated Android agents in one asyncio process, speaking
PROTOCOL.md exactly as a device does (enroll with backoff, heartbeat with drifting telemetry and
jitter, pull, verify every envelope, execute simulated command types, report results, consume
pushes from the FCM stand-in). Operators use it to size and smoke-test a deployment; the
benchmarks drive the server with it. It shares no code with the server on purpose: it is an
independent implementation of the device side, so a server that drifts from the protocol fails it.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

GRACE_S = 120
MAX_LIFETIME_S = 30 * 86400
SEEN_FORGET_AFTER_S = 86400
FINAL = frozenset({"succeeded", "failed", "rejected"})

# Simulated execution: (min ms, max ms, failure probability) per command type.
EXECUTION = {
    "ping": (5, 30, 0.0),
    "launch_app": (80, 300, 0.03),
    "reboot": (50, 150, 0.0),
    "lock": (20, 60, 0.0),
    "shell": (50, 400, 0.05),
    "install_apk": (500, 2000, 0.05),
    "uninstall_app": (200, 600, 0.02),
    "clear_app_data": (100, 300, 0.02),
    "wifi_configure": (200, 800, 0.05),
}
GC_THRESHOLDS = (100_000, 50, 100)  # CPython's default is (700, 10, 10); see settle_gc
# The floor of the wait after an answer only an admin can change (a re-enrollment waiting for
# approval), as the agent's: the jittered backoff comes on top.
REFUSED_RETRY_S = 30.0
NETWORKS = ("wifi", "wifi", "wifi", "cellular", "ethernet")
APPS = ("com.example.kiosk", "com.android.chrome", "com.example.pos", "com.example.scanner")


# --- Envelope verification (the device rules of PROTOCOL.md) -------------------------------------
class BadEnvelope(Exception):
    """Unknown kid or a signature that does not verify: never report against its id."""


class Rejected(Exception):
    def __init__(self, reason: str, command_id: str):
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id


def verify_envelope(envelope: dict, keys: dict[str, bytes], *, device_id: str, server_now: float) -> dict:
    """Returns the payload, or raises BadEnvelope (rule 1) or Rejected (rule 2)."""
    if not isinstance(envelope, dict):
        raise BadEnvelope("not an object")
    key = keys.get(envelope.get("kid"))
    payload_text, sig = envelope.get("payload"), envelope.get("sig")
    if key is None or not isinstance(payload_text, str) or not isinstance(sig, str):
        raise BadEnvelope("unknown kid or malformed envelope")
    try:
        given = bytes.fromhex(sig)
    except ValueError as exc:
        raise BadEnvelope("signature is not hex") from exc
    expected = hmac.new(key, payload_text.encode("utf-8"), hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadEnvelope("bad signature")
    payload = json.loads(payload_text)
    if payload.get("device_id") != device_id:
        raise Rejected("wrong_device", payload["id"])
    issued, expires = payload.get("issued_at", 0), payload.get("expires_at", 0)
    if expires + GRACE_S < server_now or expires - issued > MAX_LIFETIME_S:
        raise Rejected("expired", payload["id"])
    return payload


def backoff_delay(attempt: int, retry_after: float | None = None, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter exponential backoff; a server's Retry-After is a floor, jittered upwards by up
    to 50% so that a storm of refused devices does not come back in lockstep."""
    delay = random.uniform(0, min(cap, base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, retry_after * random.uniform(1.0, 1.5))
    return delay


def retry_after_of(response: aiohttp.ClientResponse) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


# --- Statistics ----------------------------------------------------------------------------------
@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
    lag: list[float] = field(default_factory=list)

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.latencies[endpoint].append(seconds)
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


# --- One simulated device --------------------------------------------------------------------------
@dataclass
class SimDevice:
    index: int
    hardware_id: str
    device_id: str | None = None
    token: str | None = None
    keys: dict[str, bytes] = field(default_factory=dict)
    interval: float = 30.0
    server_time: float = 0.0
    mono_at_server_time: float = 0.0
    seen: dict[str, int] = field(default_factory=dict)  # id -> expires_at
    held_results: dict[str, dict] = field(default_factory=dict)  # final results, kept for a re-served id
    reporting: set[str] = field(default_factory=set)  # ids whose result is being posted right now
    queue: dict[int, dict] = field(default_factory=dict)  # seq -> payload, waiting to run
    last_seq: int = 0
    bad_envelopes: int = 0
    fcm_token: str = ""
    battery: float = 0.0
    charging: bool = False
    mem_total: int = 4096
    storage_total: int = 65536
    storage_free: float = 0.0
    network: str = "wifi"
    runner: asyncio.Task | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    headers: dict = field(default_factory=dict)
    last_reenroll: float = -1e9
    # PROTOCOL.md v1.1: the request an admin must approve before this re-enrollment gets through.
    reenroll_request: str | None = None

    def server_now(self) -> float:
        return self.server_time + (time.monotonic() - self.mono_at_server_time)

    def learn_time(self, server_time: int) -> None:
        self.server_time, self.mono_at_server_time = float(server_time), time.monotonic()

    def set_keys(self, command_keys: list[dict]) -> None:
        self.keys = {k["kid"]: base64.b64decode(k["key"]) for k in command_keys}

    def telemetry(self, rng: random.Random) -> dict:
        # Slow, plausible drift: batteries drain or charge, storage fills, the network changes rarely.
        if self.charging:
            self.battery = min(100.0, self.battery + rng.uniform(0.2, 0.8))
            self.charging = self.battery < 100 and rng.random() > 0.01
        else:
            self.battery = max(0.0, self.battery - rng.uniform(0.0, 0.3))
            self.charging = self.battery < 15 or rng.random() < 0.002
        self.storage_free = max(100.0, self.storage_free - rng.uniform(0, 2))
        if rng.random() < 0.01:
            self.network = rng.choice(NETWORKS)
        return {
            "battery_pct": int(self.battery),
            "charging": self.charging,
            "battery_temp_c": round(rng.uniform(24, 38), 1),
            "mem_total_mb": self.mem_total,
            "mem_avail_mb": int(self.mem_total * rng.uniform(0.2, 0.7)),
            "storage_total_mb": self.storage_total,
            "storage_free_mb": int(self.storage_free),
            "network_type": self.network,
            "wifi_ssid": "Warehouse-5G" if self.network == "wifi" else None,
            "wifi_rssi": rng.randint(-80, -40) if self.network == "wifi" else None,
            "ip_address": f"10.{self.index // 65536 % 256}.{self.index // 256 % 256}.{self.index % 256}",
            "foreground_app": rng.choice(APPS),
            "uptime_s": int(time.monotonic()),
            "agent_version": "sim-1.0",
            "device_time": int(self.server_now() + rng.uniform(-3, 3)),
            "kids": sorted(self.keys),
            "bad_envelopes": self.bad_envelopes,
        }

    def forget_old_ids(self) -> None:
        now = self.server_now()
        for command_id in [i for i, exp in self.seen.items() if exp + SEEN_FORGET_AFTER_S < now]:
            del self.seen[command_id]


# --- The fleet -------------------------------------------------------------------------------------
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


class Fleet:
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
    ):
        self.base_url = base_url.rstrip("/")
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
        self.stop_at = 0.0
        self.enroll_retries = 0
        self.enroll_failures = 0
        # (monotonic, "received" | "acked", "<hardware id>/<command id>") for benchmarks
        self.events: list[tuple[float, str, str]] = []

    # -- HTTP -----------------------------------------------------------------------------------
    async def call(self, endpoint: str, method: str, path: str, *, device: SimDevice | None = None,
                   body: Any = None, headers: dict | None = None, started: float | None = None):
        """One request; returns (status, json body or None, retry_after). Network errors → 0."""
        assert self.session is not None
        started = time.monotonic() if started is None else started
        hdrs = {"Accept": "application/json", **(device.headers if device else {}), **(headers or {})}
        try:
            async with self.session.request(method, self.base_url + path, json=body, headers=hdrs) as response:
                data = await response.json(content_type=None) if response.status != 204 else None
                status, retry_after = response.status, retry_after_of(response)
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            self.stats.record(endpoint, 0, time.monotonic() - started)
            if self.verbose:
                print(f"{endpoint}: {type(exc).__name__}: {exc}")
            return 0, None, None
        self.stats.record(endpoint, status, time.monotonic() - started)
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
        body = device.telemetry(self.rng)
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
        if data.get("more_commands"):
            await self.pull(device)
        if data.get("inventory_requested"):
            await self.send_inventory(device)

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

    async def send_inventory(self, device: SimDevice) -> None:
        apps = [
            {"package": p, "version_name": "1.0", "version_code": 1, "system": False, "enabled": True} for p in APPS
        ]
        await self.call("inventory", "PUT", "/api/v1/device/inventory", device=device, body={"apps": apps})

    async def pull(self, device: SimDevice) -> None:
        status, data, _ = await self.call("pull", "GET", "/api/v1/device/commands?limit=100", device=device)
        if status == 200:
            self.accept_envelopes(device, data.get("commands", []), channel="pull")

    # -- commands -------------------------------------------------------------------------------
    def accept_envelopes(self, device: SimDevice, envelopes: list, channel: str) -> None:
        for envelope in envelopes:
            try:
                payload = verify_envelope(envelope, device.keys, device_id=device.device_id, server_now=device.server_now())
            except BadEnvelope:
                device.bad_envelopes += 1
                self.stats.counters["bad_envelopes"] += 1
                continue
            except Rejected as rejected:
                self.stats.counters[f"rejected_{rejected.reason}"] += 1
                if rejected.command_id not in device.seen:
                    device.seen[rejected.command_id] = 0
                    self.spawn(self.report(device, rejected.command_id, {"status": "rejected", "reason": rejected.reason}))
                continue
            command_id = payload["id"]
            if command_id in device.seen:
                # Rule 3, as the agent applies it: a held final result is posted again only once
                # its report was acknowledged (a copy arriving while it is still being posted,
                # push and heartbeat overlapping, adds nothing).
                self.stats.counters["duplicates"] += 1
                held = device.held_results.get(command_id)
                if held is not None and command_id not in device.reporting:
                    self.spawn(self.report(device, command_id, held))
                continue
            device.seen[command_id] = payload["expires_at"]
            self.stats.counters[f"received_{channel}"] += 1
            self.events.append((time.monotonic(), "received", f"{device.hardware_id}/{command_id}"))
            device.queue[payload["seq"]] = payload
        if device.queue:
            self.ensure_runner(device)

    def drop_if_not_started(self, device: SimDevice, command_id: str) -> None:
        for seq, payload in list(device.queue.items()):
            if payload["id"] == command_id:
                del device.queue[seq]
                self.stats.counters["cancelled"] += 1

    def ensure_runner(self, device: SimDevice) -> None:
        device.wake.set()
        if device.runner is None or device.runner.done():
            device.runner = self.spawn(self.run_queue(device))

    async def run_queue(self, device: SimDevice) -> None:
        pulled_for_gap = False
        while device.queue:
            seq = min(device.queue)
            if seq != device.last_seq + 1 and device.last_seq and not pulled_for_gap:
                pulled_for_gap = True  # a gap: pull once; what is still missing after that is skipped
                await self.pull(device)
                continue
            payload = device.queue.pop(seq)
            pulled_for_gap = False
            device.last_seq = max(device.last_seq, seq)
            result = await self.execute(payload)
            device.held_results[payload["id"]] = result
            await self.report(device, payload["id"], result)

    async def execute(self, payload: dict) -> dict:
        spec = EXECUTION.get(payload["type"])
        if spec is None:
            return {"status": "rejected", "reason": "unsupported_type"}
        low, high, failure = spec
        if self.failure_rate is not None:
            failure = self.failure_rate
        await asyncio.sleep(self.rng.uniform(low, high) / 1000 * self.exec_scale)
        if self.rng.random() < failure:
            return {"status": "failed", "exit_code": 1, "error": f"simulated {payload['type']} failure"}
        return {"status": "succeeded", "exit_code": 0, "output": f"simulated {payload['type']} ok"}

    async def report(self, device: SimDevice, command_id: str, result: dict) -> None:
        # At least once: retry until the server acknowledges (its idempotency makes repeats harmless).
        device.reporting.add(command_id)
        try:
            await self._report(device, command_id, result)
        finally:
            device.reporting.discard(command_id)

    async def _report(self, device: SimDevice, command_id: str, result: dict) -> None:
        attempt = 0
        while time.monotonic() < self.stop_at + 30:
            status, _, retry_after = await self.call(
                "result", "POST", f"/api/v1/device/commands/{command_id}/result", device=device, body=result
            )
            if status == 200:
                self.stats.counters[f"acked_{result['status']}"] += 1
                self.events.append((time.monotonic(), "acked", f"{device.hardware_id}/{command_id}"))
                return
            if status in (400, 404):  # the server will never take it; retrying cannot help
                self.stats.counters[f"result_refused_{status}"] += 1
                return
            await asyncio.sleep(backoff_delay(attempt, retry_after))
            attempt += 1

    # -- push (the FCM stand-in hands over what it delivered) ------------------------------------
    async def register_push_tokens(self) -> None:
        """Like a device obtaining its token from FCM: the stand-in learns the fleet's tokens."""
        assert self.session is not None and self.push_url is not None
        tokens = [d.fcm_token for d in self.devices]
        async with self.session.post(f"{self.push_url}/_standin/tokens", json={"tokens": tokens}) as r:
            r.raise_for_status()

    async def consume_pushes(self) -> None:
        """Streams the stand-in's delivered messages (its WebSocket feed, as FCM's persistent
        connection does for a phone) and feeds each to its device. After a (re)connect it first
        catches up by cursor through the long-poll feed, so a dropped stream loses nothing."""
        assert self.push_url is not None
        cursor = 0
        # Its own connection, as a device's FCM channel is: never queued behind the fleet's HTTP calls.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as push_session:
            while time.monotonic() < self.stop_at:
                try:
                    async with push_session.ws_connect(f"{self.push_url}/_standin/ws", heartbeat=30) as ws:
                        while True:  # catch up, page by page, before trusting the stream
                            async with push_session.get(f"{self.push_url}/_standin/messages", params={"after": cursor}) as r:
                                page = await r.json()
                            if not page.get("messages"):
                                break
                            cursor = self._deliver_pushes(page, cursor)
                        async for frame in ws:
                            if frame.type != aiohttp.WSMsgType.TEXT:
                                break
                            record = json.loads(frame.data)
                            if record["n"] > cursor:
                                cursor = self._deliver_pushes({"messages": [record]}, cursor)
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    pass
                await asyncio.sleep(0.5)  # closed or failed: reconnect, not in a tight loop

    def _deliver_pushes(self, data: dict, cursor: int) -> int:
        for record in data.get("messages", []):
            cursor = max(cursor, record["n"])
            device = self.by_fcm.get(record["token"])
            if device is None or device.device_id is None:
                continue
            self.on_push(device, record.get("message", {}).get("data", {}))
        return cursor

    def on_push(self, device: SimDevice, data: dict) -> None:
        self.stats.counters["pushes"] += 1
        if data.get("kind") == "command":
            try:
                envelope = json.loads(data["envelope"])
            except (KeyError, json.JSONDecodeError):
                device.bad_envelopes += 1
                return
            self.accept_envelopes(device, [envelope], channel="push")
        elif data.get("kind") == "sync":
            self.spawn(self.pull(device))

    # -- orchestration --------------------------------------------------------------------------
    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def __aenter__(self) -> "Fleet":
        connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
        self._tasks: set[asyncio.Task] = set()
        self.stop_at = time.monotonic() + self.duration
        return self

    async def __aexit__(self, *exc) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()

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
