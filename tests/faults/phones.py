"""The devices of the fault tests: a small asyncio fleet speaking PROTOCOL.md (enroll, heartbeat,
pull, take pushes from the FCM stand-in, verify each envelope with loadtest.simulator's independent
device-side verifier, run each command id once, report its result until it is acknowledged), with
everything counted so that "stored" can be checked against "answered 200" in PostgreSQL:

- each heartbeat carries the device's own sequence number in `uptime_s` (a field stored in the
  device's status row), so a heartbeat counts as stored when PostgreSQL holds its number or a later
  one of the same device (the status row keeps the latest state by design);
- `bad_envelopes` (optional) adds to a cumulative counter: stored exactly once per acknowledged
  heartbeat, or it is counted twice or lost;
- each command is run once per id (rule 3 of PROTOCOL.md), its receipts per channel counted, and its
  final report's answer kept, so a delivery counts as stored when PostgreSQL holds that final state.
Every answer is checked as it comes: a 5xx other than 503 `busy` with Retry-After, a refusal
without {detail, code}, or no answer at all is a problem.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from loadtest.simulator import BadEnvelope, Rejected, verify_envelope

TIMEOUT_S = 15


@dataclass
class Phone:
    hardware_id: str
    fcm_token: str
    device_id: str = ""
    token: str = ""
    keys: dict = field(default_factory=dict)
    server_time: float = 0.0
    mono_at: float = 0.0
    seq: int = 0
    acked: list = field(default_factory=list)  # sequence numbers answered 200
    acked_bad: int = 0  # bad_envelopes carried by heartbeats answered 200
    sent_bad: int = 0
    receipts: Counter = field(default_factory=Counter)  # (command id, channel) -> envelopes received
    executed: Counter = field(default_factory=Counter)  # command id -> times run
    reported: dict = field(default_factory=dict)  # command id -> the final report's answer status

    def server_now(self) -> float:
        return self.server_time + time.monotonic() - self.mono_at

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Device {self.token}"}


class Phones:
    def __init__(self, stack, count: int, prefix: str, *, bad_envelopes: int = 0):
        self.stack = stack
        self.base_url = stack.base_url
        self.bad_envelopes = bad_envelopes
        self.phones = [Phone(hardware_id=f"{prefix}-{i:04d}", fcm_token=f"{prefix}-fcm-{i:04d}") for i in range(count)]
        self.by_token = {p.fcm_token: p for p in self.phones}
        self.statuses: Counter = Counter()  # (endpoint, status)
        self.problems: Counter = Counter()
        self.examples: dict = {}
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task] = set()
        self.push_cursor = 0

    async def __aenter__(self) -> "Phones":
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                                             connector=aiohttp.TCPConnector(limit=200))
        return self

    async def __aexit__(self, *exc) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @property
    def device_ids(self) -> list[str]:
        return [p.device_id for p in self.phones]

    # --- HTTP, with every answer checked -----------------------------------------------------------
    async def call(self, endpoint: str, method: str, path: str, *, phone: Phone | None = None, body=None,
                   headers: dict | None = None) -> tuple[int, dict | None, float | None]:
        try:
            async with self.session.request(method, self.base_url + path, json=body,
                                            headers={**(phone.headers if phone else {}), **(headers or {})}) as response:
                raw = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.statuses[(endpoint, 0)] += 1
            self._problem(f"{endpoint}: no answer ({type(exc).__name__})", path)
            return 0, None, None
        self.statuses[(endpoint, status)] += 1
        data = None
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
        code = data.get("code") if isinstance(data, dict) else None
        if status >= 500 and not (status == 503 and code == "busy" and retry_after):
            shown = code or ("an HTML page" if raw.lstrip().startswith(b"<") else repr(raw[:80]))
            self._problem(f"{endpoint}: {status} {shown}", path)
        elif 400 <= status < 500 and not (isinstance(data, dict) and data.get("detail") and code):
            self._problem(f"{endpoint}: {status} without {{detail, code}}", path)
        elif status in (429, 503) and not retry_after:
            self._problem(f"{endpoint}: {status} without Retry-After", path)
        try:
            wait = float(retry_after) if retry_after else None
        except ValueError:
            wait = None
        return status, data, wait

    def _problem(self, signature: str, example: str) -> None:
        self.problems[signature] += 1
        self.examples.setdefault(signature, example)

    # --- enrollment ---------------------------------------------------------------------------------
    async def enroll_all(self, deadline_s: float = 60) -> None:
        gate = asyncio.Semaphore(20)
        await asyncio.gather(*(self._enroll(p, gate, time.monotonic() + deadline_s) for p in self.phones))
        missing = [p.hardware_id for p in self.phones if not p.device_id]
        assert not missing, f"{len(missing)} devices could not enroll: {self.problems}"
        self.stack.standin.register([p.fcm_token for p in self.phones])

    async def _enroll(self, phone: Phone, gate, deadline: float) -> None:
        body = {"hardware_id": phone.hardware_id, "model": "Fault Tab", "manufacturer": "Tests", "android_version": "14",
                "sdk_int": 34, "agent_version": "faults-1", "fcm_token": phone.fcm_token}
        async with gate:
            attempt = 0
            while time.monotonic() < deadline:
                status, data, wait = await self.call("enroll", "POST", "/api/v1/enroll", body=body,
                                                     headers={"X-Admin-Key": self.stack.enroll_key})
                if status in (200, 201):
                    phone.device_id, phone.token = data["device_id"], data["device_token"]
                    phone.keys = {k["kid"]: base64.b64decode(k["key"]) for k in data["command_keys"]}
                    self._learn_time(phone, data["server_time"])
                    return
                attempt += 1
                await asyncio.sleep(_backoff(attempt, wait))

    @staticmethod
    def _learn_time(phone: Phone, server_time) -> None:
        phone.server_time, phone.mono_at = float(server_time), time.monotonic()

    # --- heartbeats -------------------------------------------------------------------------------
    async def heartbeat(self, phone: Phone) -> tuple[int, float | None]:
        phone.seq += 1
        seq, bad = phone.seq, self.bad_envelopes
        body = {"uptime_s": seq, "battery_pct": seq % 101, "charging": seq % 2 == 0, "network_type": "wifi",
                "device_time": int(time.time()), "kids": sorted(phone.keys), "agent_version": "faults-1"}
        if bad:
            body["bad_envelopes"] = bad
        phone.sent_bad += bad
        status, data, wait = await self.call("heartbeat", "POST", "/api/v1/device/heartbeat", phone=phone, body=body)
        if status == 200:
            phone.acked.append(seq)
            phone.acked_bad += bad
            self._learn_time(phone, data["server_time"])
            if data.get("command_keys"):
                phone.keys = {k["kid"]: base64.b64decode(k["key"]) for k in data["command_keys"]}
            self.accept(phone, data.get("commands", []), "heartbeat")
            if data.get("more_commands"):
                await self.pull(phone)
        return status, wait

    async def heartbeat_loop(self, phone: Phone, until: float, interval: float, pull_every: int = 0) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        n = 0
        while time.monotonic() < until:
            n += 1
            status, wait = await self.heartbeat(phone)
            if pull_every and n % pull_every == 0 and status == 200:
                await self.pull(phone)
            if status == 200:
                await asyncio.sleep(interval * random.uniform(0.9, 1.1))
            else:  # PROTOCOL.md: back off, never under Retry-After, with jitter
                await asyncio.sleep(_backoff(1, wait))

    async def heartbeats(self, seconds: float, interval: float, pull_every: int = 0) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.heartbeat_loop(p, until, interval, pull_every) for p in self.phones))

    async def pull(self, phone: Phone) -> None:
        status, data, _ = await self.call("pull", "GET", "/api/v1/device/commands?limit=100", phone=phone)
        if status == 200:
            self.accept(phone, data.get("commands", []), "pull")

    # --- commands ---------------------------------------------------------------------------------
    def accept(self, phone: Phone, envelopes: list, channel: str) -> None:
        for envelope in envelopes:
            try:
                payload = verify_envelope(envelope, phone.keys, device_id=phone.device_id, server_now=phone.server_now())
            except (BadEnvelope, Rejected) as exc:
                self._problem(f"envelope refused by the device ({type(exc).__name__}: {exc})", channel)
                continue
            command_id = payload["id"]
            phone.receipts[(command_id, channel)] += 1
            if not phone.executed[command_id]:  # rule 3: an id already seen is a duplicate
                phone.executed[command_id] += 1
                self.spawn(self.report(phone, command_id))

    async def report(self, phone: Phone, command_id: str, deadline_s: float = 60) -> None:
        result = {"status": "succeeded", "exit_code": 0, "output": f"{phone.hardware_id} ran {command_id}"}
        deadline, attempt = time.monotonic() + deadline_s, 0
        while time.monotonic() < deadline:
            status, _, wait = await self.call("result", "POST", f"/api/v1/device/commands/{command_id}/result", phone=phone, body=result)
            if status == 200 or 400 <= status < 500 and status != 429:
                phone.reported[command_id] = status
                return
            attempt += 1
            await asyncio.sleep(_backoff(attempt, wait))

    async def take_pushes(self) -> int:
        """Hand the stand-in's newly delivered messages to their devices (a phone's FCM channel)."""
        page = await asyncio.to_thread(self.stack.standin.messages, after=self.push_cursor, limit=100_000)
        self.push_cursor = page["last"]
        count = 0
        for record in page["messages"]:
            phone = self.by_token.get(record["token"])
            if phone is None:
                continue
            count += 1
            data = record["message"].get("data", {})
            if data.get("kind") == "command":
                self.accept(phone, [json.loads(data["envelope"])], "push")
            elif data.get("kind") == "sync":
                self.spawn(self.pull(phone))
        return count

    async def consume_pushes(self, until: float) -> None:
        while time.monotonic() < until:
            await self.take_pushes()
            await asyncio.sleep(0.2)

    # --- what reached PostgreSQL --------------------------------------------------------------------
    def heartbeat_counts(self) -> dict:
        rows = self.stack.sql(
            "SELECT device_id::text, COALESCE(uptime_s, 0), bad_envelopes_total FROM devices_devicestatus WHERE device_id = ANY(%s::uuid[])",
            [self.device_ids])
        stored_seq = {r[0]: r[1] for r in rows}
        stored_bad = {r[0]: r[2] for r in rows}
        answered = sum(len(p.acked) for p in self.phones)
        stored = sum(1 for p in self.phones for s in p.acked if s <= stored_seq.get(p.device_id, 0))
        return {
            "sent": sum(p.seq for p in self.phones),
            "answered 200": answered,
            "answered 503": sum(n for (e, s), n in self.statuses.items() if e == "heartbeat" and s == 503),
            "other answers": {f"{s}": n for (e, s), n in self.statuses.items() if e == "heartbeat" and s not in (200, 503)},
            "stored": stored,
            "lost": answered - stored,
            "bad_envelopes acknowledged": sum(p.acked_bad for p in self.phones),
            "bad_envelopes sent": sum(p.sent_bad for p in self.phones),
            "bad_envelopes stored": sum(stored_bad.values()),
            "stored beyond sent": sum(1 for p in self.phones if stored_seq.get(p.device_id, 0) > p.seq),
            "pull answers": {f"{s}": n for (e, s), n in self.statuses.items() if e == "pull"},
            "answer problems": dict(self.problems),
        }

    async def settle_heartbeats(self, seconds: float = 20, also=None) -> dict:
        """Poll PostgreSQL until every heartbeat answered 200 is stored and every bad envelope
        acknowledged is counted (beat flushes every second; what a killed flusher held comes back
        once its claim is stale, WRITE_BEHIND_CLAIM_STALE_S), and `also()` holds if given."""
        deadline = time.monotonic() + seconds
        while True:
            counts = await asyncio.to_thread(self.heartbeat_counts)
            settled = counts["lost"] == 0 and counts["bad_envelopes stored"] == counts["bad_envelopes acknowledged"]
            if settled and also is not None:
                settled = await asyncio.to_thread(also)
            if settled or time.monotonic() > deadline:
                counts["settle_s"] = round(seconds - max(0.0, deadline - time.monotonic()), 1)
                return counts
            await asyncio.sleep(0.5)

    def delivery_counts(self, command_ids: list[str]) -> dict:
        rows = self.stack.sql(
            "SELECT command_id::text, device_id::text, state, output FROM commands_delivery WHERE command_id = ANY(%s::uuid[])",
            [command_ids])
        by_key: dict = {}
        for command_id, device_id, state, output in rows:
            by_key.setdefault((command_id, device_id), []).append((state, output))
        expected = [(c, p) for c in command_ids for p in self.phones]
        answered = [(c, p) for c, p in expected if p.reported.get(c) == 200]
        stored = [(c, p) for c, p in answered
                  if by_key.get((c, p.device_id)) == [("succeeded", f"{p.hardware_id} ran {c}")]]
        channels = Counter(ch for p in self.phones for (c, ch), n in p.receipts.items() if c in command_ids for _ in range(n))
        return {
            "deliveries": len(expected),
            "delivery rows": len(rows),
            "received": sum(1 for c, p in expected if any(p.receipts[(c, ch)] for ch in ("push", "heartbeat", "pull"))),
            "runs": sum(p.executed[c] for c, p in expected),
            "receipts by channel": dict(channels),
            "reports answered 200": len(answered),
            "stored": len(stored),
            "lost": len(answered) - len(stored),
            "not final": sum(1 for v in by_key.values() for state, _ in v if state in ("queued", "sent", "received", "running")),
            "answer problems": dict(self.problems),
        }

    def problem_summary(self) -> list[str]:
        return [f"x{n} {sig} (e.g. {self.examples[sig]})" for sig, n in self.problems.most_common(10)]


def _backoff(attempt: int, retry_after: float | None) -> float:
    delay = random.uniform(0.2, min(4.0, 0.5 * 2 ** attempt))
    return max(delay, retry_after * random.uniform(1.0, 1.3)) if retry_after else delay
