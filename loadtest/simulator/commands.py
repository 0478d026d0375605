"""A simulated device's commands (PROTOCOL.md "Commands"): every envelope verified, duplicates
dropped (a held final result posted again), one command at a time in `seq` order with a pull on
a gap, each executed (install_apk for real, by the installer; the others simulated) and its
result reported until the server acknowledges it."""

from __future__ import annotations

import asyncio
import time

from loadtest.simulator.device import SimDevice
from loadtest.simulator.protocol import BadEnvelope, Rejected, backoff_delay, verify_envelope

# Simulated execution: (min ms, max ms, failure probability) per command type. install_apk's is
# the time PackageManager takes once the file is on the device; its failures come from the
# installer (a downgrade refused, a bad download, the Fleet's install_failures), not from here.
EXECUTION = {
    "ping": (5, 30, 0.0),
    "launch_app": (80, 300, 0.03),
    "reboot": (50, 150, 0.0),
    "lock": (20, 60, 0.0),
    "shell": (50, 400, 0.05),
    "install_apk": (500, 2000, 0.0),
    "uninstall_app": (200, 600, 0.02),
    "clear_app_data": (100, 300, 0.02),
    "wifi_configure": (200, 800, 0.05),
}


class CommandRunner:
    """Mixed into Fleet: needs its stats, events, rng, failure_rate, exec_scale, stop_at,
    installer, call(), pull() and spawn()."""

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
            result = await self.execute(device, payload)
            device.held_results[payload["id"]] = result
            await self.report(device, payload["id"], result)

    async def execute(self, device: SimDevice, payload: dict) -> dict:
        spec = EXECUTION.get(payload["type"])
        if spec is None:
            return {"status": "rejected", "reason": "unsupported_type"}
        if payload["type"] == "install_apk":
            return await self.installer.run(device, payload)
        if payload["type"] == "uninstall_app":
            return await self.uninstall(device, payload.get("params") or {})
        low, high, failure = spec
        if self.failure_rate is not None:
            failure = self.failure_rate
        await asyncio.sleep(self.rng.uniform(low, high) / 1000 * self.exec_scale)
        if self.rng.random() < failure:
            return {"status": "failed", "exit_code": 1, "error": f"simulated {payload['type']} failure"}
        return {"status": "succeeded", "exit_code": 0, "output": f"simulated {payload['type']} ok"}

    async def uninstall(self, device: SimDevice, params: dict) -> dict:
        """As PackageInstaller.uninstall on a Device Owner: the package leaves the installed map
        (and the inventory, re-sent), an absent one fails as Android's does."""
        package = params.get("package")
        await asyncio.sleep(self.rng.uniform(*EXECUTION["uninstall_app"][:2]) / 1000 * self.exec_scale)
        if package not in device.installed:
            return {"status": "failed", "exit_code": 1, "error": f"DELETE_FAILED_INTERNAL_ERROR: {package} is not installed"}
        if self.failure_rate and self.rng.random() < self.failure_rate:
            return {"status": "failed", "exit_code": 1, "error": "simulated uninstall_app failure"}
        del device.installed[package]
        await self.installer.send_inventory(device)
        self.stats.counters["uninstalled"] += 1
        return {"status": "succeeded", "exit_code": 0, "output": f"uninstalled {package}"}

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
