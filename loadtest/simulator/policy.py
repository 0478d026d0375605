"""A simulated device's policy channel (PROTOCOL.md v1.1), as the agent's PolicySync drives it:
fetch GET /api/v1/device/policy when a heartbeat answer's `policy_version` differs from the one
the device holds, or on a `sync` push; verify it like an envelope (a bad one is counted in
`bad_envelopes`, never applied nor reported, and fetched once more after the heartbeat that
refreshes the keys); keep it; apply its items to the simulated Device Owner (applier.py, owner.py); report
per-item states with PUT /api/v1/device/policy/status until the server has them. The heartbeat
then sends the kept version. Items left `pending` are applied again at each heartbeat.

One task per device at a time, spawned only when something is due: a fleet with nothing to fetch
costs its heartbeats one comparison each.
"""

from __future__ import annotations

import asyncio
import time

from loadtest.simulator.applier import RetryLater, apply_items
from loadtest.simulator.device import SimDevice
from loadtest.simulator.download import DownloadFailed
from loadtest.simulator.installer import ApkSpec
from loadtest.simulator.owner import failed
from loadtest.simulator.protocol import BadEnvelope, PolicyForAnotherDevice, backoff_delay, verify_policy

ATTEMPTS = 4  # per trigger; what is still due then waits for the next heartbeat
RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})


class PolicyClient:
    """Mixed into Fleet: needs its stats, events, installer, call() and spawn()."""

    def policy_after_heartbeat(self, device: SimDevice, server_version) -> None:
        """The agent's PolicySync.onHeartbeat: what this answer makes due."""
        record = device.policy
        if record.refetch_after_heartbeat:  # the keys are fresh now: verify once more
            record.refetch_after_heartbeat, record.retrying, record.fetch = False, True, True
        # The agent heartbeats and fetches in turn on one loop; here they overlap, and a heartbeat
        # answered while the fetch is in flight adds nothing (that fetch brings the version).
        if (isinstance(server_version, int) and not isinstance(server_version, bool)
                and server_version != record.version and not record.fetching):
            if not record.fetch:
                self.stats.counters["policy_fetch_by_heartbeat"] += 1
            record.fetch = True
        if record.has_pending():
            record.reapply = True
        self.kick_policy(device)

    def policy_sync_pushed(self, device: SimDevice) -> None:
        """A `sync` push: the agent fetches its policy too (it may be what changed)."""
        if not device.policy.fetch:
            self.stats.counters["policy_fetch_by_push"] += 1
        device.policy.fetch = True
        self.kick_policy(device)

    def kick_policy(self, device: SimDevice) -> None:
        record = device.policy
        due = record.fetch or record.reapply or not record.posted
        if due and (record.task is None or record.task.done()):
            record.task = self.spawn(self.sync_policy(device))

    async def sync_policy(self, device: SimDevice) -> None:
        record = device.policy
        while record.fetch or record.reapply or not record.posted:
            if record.fetch:
                record.fetch = False
                if not await self.fetch_policy(device):
                    record.fetch = True  # still due: the next heartbeat tries again
                    return
            if record.reapply:
                record.reapply = False
                await self.apply_policy(device)
            if not record.posted and not await self.post_policy_status(device, record.status):
                return

    async def _request(self, endpoint: str, method: str, path: str, device: SimDevice, body=None):
        """(status, data) after at most ATTEMPTS tries with backoff on network errors and load shedding."""
        status, data = 0, None
        for attempt in range(ATTEMPTS):
            status, data, retry_after = await self.call(endpoint, method, path, device=device, body=body)
            if status not in RETRYABLE:
                break
            await asyncio.sleep(backoff_delay(attempt, retry_after))
        return status, data

    async def fetch_policy(self, device: SimDevice) -> bool:
        """False: not fetched (retryable); True: fetched and judged (or refused for good)."""
        record = device.policy
        record.fetching = True
        try:
            status, data = await self._request("policy", "GET", "/api/v1/device/policy", device)
        finally:
            record.fetching = False
        if status in RETRYABLE:
            return False
        if status != 200:
            self.stats.counters[f"policy_fetch_refused_{status}"] += 1  # a v1 server (404): wait for the next trigger
            return True
        retry, record.retrying = record.retrying, False
        try:
            text, document = verify_policy(data, device.keys, device_id=device.device_id)
        except BadEnvelope:
            device.bad_envelopes += 1
            self.stats.counters["policy_bad"] += 1
            record.refetch_after_heartbeat = not retry  # once after the heartbeat that refreshes keys, then dropped
            return True
        except PolicyForAnotherDevice as other:
            self.stats.counters["policy_wrong_device"] += 1
            items = {name: failed("wrong_device: the policy names another device") for name in other.document["items"]}
            await self.post_policy_status(device, {"version": other.document["version"], "items": items})
            return True
        self.stats.counters["policy_fetched"] += 1
        self.events.append((time.monotonic(), "policy_fetched", f"{device.hardware_id}/{document['version']}"))
        if text != record.text:  # the same document again: applied already
            record.text, record.version, record.document = text, document["version"], document
            record.reapply = True
        return True

    async def apply_policy(self, device: SimDevice) -> None:
        record = device.policy
        document = record.document
        if document is None:
            return
        version = document["version"]

        async def required_app(spec: ApkSpec) -> dict:
            params = {"apk_id": spec.apk_id, "package": spec.package, "version_code": spec.version_code,
                      "sha256": spec.sha256, "size": spec.size}
            try:
                return await self.installer.install(device, {"id": f"policy-{version}", "params": params}, spec)
            except DownloadFailed as exc:
                if exc.retryable:
                    raise RetryLater(str(exc)) from exc
                return {"status": "failed", "error": str(exc)}

        states = await apply_items(document["items"], record.last_values, device.owner, device.installed, required_app)
        for name, state in states.items():
            if state["state"] != "unsupported":
                record.last_values[name] = document["items"][name]
            self.stats.counters[f"policy_item_{state['state']}"] += 1
        status = {"version": version, "items": states}
        if status != record.status:  # the same outcome again is not posted again
            record.status, record.posted = status, False
        self.stats.counters["policy_applied"] += 1
        self.events.append((time.monotonic(), "policy_applied", f"{device.hardware_id}/{version}"))

    async def post_policy_status(self, device: SimDevice, status: dict) -> bool:
        """True once the server has it or will never take it (a 400 is not retried)."""
        code, _ = await self._request("policy_status", "PUT", "/api/v1/device/policy/status", device, body=status)
        if code in RETRYABLE or code == 401:
            return False
        record = device.policy
        if status is record.status:
            record.posted = True
        if code == 204:
            self.stats.counters["policy_reported"] += 1
            self.events.append((time.monotonic(), "policy_reported", f"{device.hardware_id}/{status['version']}"))
        else:
            self.stats.counters[f"policy_status_refused_{code}"] += 1
        return True
