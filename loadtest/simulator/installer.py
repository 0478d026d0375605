"""install_apk for real (PROTOCOL.md "Types"): the simulated device downloads the release from
the server (loadtest.simulator.download), checks its size and SHA-256 against the command's
params and the server's X-Checksum-SHA256 (a mismatch starts the download over from 0 once, then
fails), and "installs" it into its {package: version_code} map as Android 14 would for a Device
Owner: a lower version code than the one installed is refused (INSTALL_FAILED_VERSION_DOWNGRADE;
an equal one replaces the app). A success re-sends the inventory, so the server sees the new
version, and reports the version read back from the map."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Callable, Union

from loadtest.simulator.download import DownloadFailed, Downloader, Transfer
from loadtest.simulator.protocol import backoff_delay

# How long PackageManager takes to install a file already on the device (ms, before exec_scale).
INSTALL_MS = (500, 2000)
INVENTORY_ATTEMPTS = 5
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")

# {apk_id or package: probability of failing}, or (device, payload) -> an error text or None.
FailureRule = Union[dict, Callable[..., Union[str, None]]]


@dataclass(frozen=True)
class ApkSpec:
    apk_id: str
    package: str
    version_code: int
    sha256: str
    size: int


def apk_spec(params) -> ApkSpec:
    """install_apk's params, checked as the agent checks them (ValueError: bad_params)."""
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    apk_id, package, code = params.get("apk_id"), params.get("package"), params.get("version_code")
    sha256, size = params.get("sha256"), params.get("size")
    if not isinstance(apk_id, str) or not apk_id:
        raise ValueError("apk_id is required")
    if not isinstance(package, str) or not package:
        raise ValueError("package is required")
    if type(code) is not int or code < 0:
        raise ValueError("version_code must be a non-negative integer")
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise ValueError("sha256 must be 64 hex digits")
    if type(size) is not int or size < 0:
        raise ValueError("size must be a non-negative integer")
    return ApkSpec(apk_id, package, code, sha256.lower(), size)


def check(transfer: Transfer, spec: ApkSpec) -> str | None:
    """What is wrong with the downloaded bytes, in the agent's order; None when they are right."""
    actual = transfer.sha256()
    if actual != spec.sha256:
        return f"sha256 {actual} does not match the command's {spec.sha256}"
    if transfer.checksum_header is not None and transfer.checksum_header.strip().lower() != actual:
        return f"sha256 {actual} does not match X-Checksum-SHA256 {transfer.checksum_header}"
    if transfer.have != spec.size:
        return f"size {transfer.have} is not the expected {spec.size}"
    return None


def failed(error: str) -> dict:
    return {"status": "failed", "exit_code": 1, "error": error}


class ApkInstaller:
    """The Fleet's install_apk. `downloads` lists every download that passed its checks (device,
    apk id, the SHA-256 the device computed, bytes, cuts, resumes, restarts): the benchmark
    checks each one against the file it uploaded."""

    def __init__(self, fleet, *, failures: FailureRule | None = None, cut_rate: float = 0.0,
                 concurrency: int | None = None):
        self.fleet = fleet
        self.failures = failures
        self.downloader = Downloader(fleet, cut_rate=cut_rate, concurrency=concurrency)
        self.downloads: list[dict] = []

    async def run(self, device, payload: dict) -> dict:
        try:
            spec = apk_spec(payload.get("params"))
        except ValueError as exc:
            return {"status": "rejected", "reason": "bad_params", "error": str(exc)}
        try:
            return await self.install(device, payload, spec)
        except DownloadFailed as exc:
            self.downloader.count("apk_download_failed")
            return failed(str(exc))

    async def install(self, device, payload: dict, spec: ApkSpec) -> dict:
        """Download, check and install: install_apk's, and a policy's required app's (its
        `payload` is {"id": "policy-<version>", "params": ...}). DownloadFailed propagates."""
        await self.download_checked(device, payload["id"], spec)
        current = device.installed.get(spec.package)
        if current is not None and spec.version_code < current:
            self.downloader.count("apk_refused")
            return failed(f"INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: Update version code "
                          f"{spec.version_code} is older than current {current}")
        low, high = INSTALL_MS
        await asyncio.sleep(self.fleet.rng.uniform(low, high) / 1000 * self.fleet.exec_scale)
        error = self.failure_for(device, payload, spec)
        if error:
            self.downloader.count("apk_install_failed")
            return failed(error)
        device.installed[spec.package] = spec.version_code
        self.downloader.count("apk_installed")
        await self.send_inventory(device)
        return {"status": "succeeded", "exit_code": 0,
                "output": f"installed {spec.package} version code {device.installed[spec.package]}"}

    async def download_checked(self, device, command_id: str, spec: ApkSpec) -> Transfer:
        problem = ""
        for fresh in (False, True):  # a mismatch: once more from byte 0, then give up
            transfer = await self.downloader.fetch(device, spec.apk_id, spec.size, may_cut=not fresh)
            self.downloader.count("apk_downloaded")
            problem = check(transfer, spec)
            if problem is None:
                self.downloader.count("apk_checksum_ok")
                self.fleet.events.append((time.monotonic(), "downloaded", f"{device.hardware_id}/{command_id}"))
                self.downloads.append({"device": device.hardware_id, "apk_id": spec.apk_id, "sha256": transfer.sha256(),
                                       "bytes": transfer.have, "cuts": transfer.cuts, "resumes": transfer.resumes,
                                       "restarts": transfer.restarts})
                return transfer
            self.downloader.count("apk_checksum_mismatch")
        raise DownloadFailed(f"download rejected: {problem}")

    def failure_for(self, device, payload: dict, spec: ApkSpec) -> str | None:
        """The Fleet's install_failures rule: a callable decides per device; a dict gives a
        probability per apk_id or package."""
        rule = self.failures
        if rule is None:
            return None
        if callable(rule):
            return rule(device, payload)
        probability = rule.get(spec.apk_id, rule.get(spec.package, 0.0))
        if probability and self.fleet.rng.random() < probability:
            return f"INSTALL_FAILED_INTERNAL_ERROR: simulated failure installing {spec.package} {spec.version_code}"
        return None

    async def send_inventory(self, device) -> None:
        """Until the server takes it (a few tries): its version filters read the inventory."""
        for attempt in range(INVENTORY_ATTEMPTS):
            status, retry_after = await self.fleet.send_inventory(device)
            if status == 204 or status not in (0, 429, 503):
                return
            await asyncio.sleep(backoff_delay(attempt, retry_after))
