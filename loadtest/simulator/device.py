"""One simulated device's state: its credentials and keys, its clock (the server's, PROTOCOL.md
"Clock"), what it has seen and still holds, its drifting telemetry and its installed apps."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import dataclass, field

from loadtest.simulator.owner import DeviceOwner, PolicyRecord
from loadtest.simulator.protocol import SEEN_FORGET_AFTER_S

NETWORKS = ("wifi", "wifi", "wifi", "cellular", "ethernet")
APPS = ("com.example.kiosk", "com.android.chrome", "com.example.pos", "com.example.scanner")


def seeded_apps() -> dict[str, int]:
    """What every device has installed at the start (the inventory it has always reported)."""
    return {package: 1 for package in APPS}


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
    # package -> version code, as PackageManager knows it: install_apk reads and updates it, and
    # the inventory is read from it.
    installed: dict[str, int] = field(default_factory=seeded_apps)
    # PROTOCOL.md v1.1: the policy the device keeps, and the Device Owner state its items changed.
    policy: PolicyRecord = field(default_factory=PolicyRecord)
    owner: DeviceOwner = field(default_factory=DeviceOwner)

    def server_now(self) -> float:
        return self.server_time + (time.monotonic() - self.mono_at_server_time)

    def learn_time(self, server_time: int) -> None:
        self.server_time, self.mono_at_server_time = float(server_time), time.monotonic()

    def set_keys(self, command_keys: list[dict]) -> None:
        self.keys = {k["kid"]: base64.b64decode(k["key"]) for k in command_keys}

    def inventory(self) -> list[dict]:
        """PUT /api/v1/device/inventory's apps, from the installed map."""
        return [{"package": package, "version_name": str(code), "version_code": code, "system": False, "enabled": True}
                for package, code in sorted(self.installed.items())]

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
            # In lock task the kiosk app is the one in front; otherwise whatever the user opened.
            "foreground_app": self.owner.lock_task_packages[0] if self.owner.lock_task_active else rng.choice(APPS),
            "uptime_s": int(time.monotonic()),
            "agent_version": "sim-1.0",
            "device_time": int(self.server_now() + rng.uniform(-3, 3)),
            "kids": sorted(self.keys),
            "bad_envelopes": self.bad_envelopes,
            "policy_version": self.policy.version,
            "lock_task_active": self.owner.lock_task_active,
            "usage_access": self.owner.usage_access,
            "battery_optimization_exempt": self.owner.battery_optimization_exempt,
        }

    def forget_old_ids(self) -> None:
        now = self.server_now()
        for command_id in [i for i, exp in self.seen.items() if exp + SEEN_FORGET_AFTER_S < now]:
            del self.seen[command_id]
