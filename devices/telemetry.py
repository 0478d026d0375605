"""Lenient validation of heartbeat telemetry (PROTOCOL.md): a field with an invalid value is
dropped and named in `ignored_fields`; unknown fields are ignored silently; the heartbeat itself
is never refused for its content."""

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from devices.models import DeviceStatus

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_INT32 = 2**31 - 1
NETWORK_TYPES = frozenset(DeviceStatus.Network.values)
MAX_KIDS = 8


class Invalid(Exception):
    pass


def _int(value: Any, lo: int, hi: int) -> int:
    # JSON has one number type: 42.0 is accepted as 42, 42.5 and true are not.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid
    if isinstance(value, float):
        if not value.is_integer():
            raise Invalid
        value = int(value)
    if not lo <= value <= hi:
        raise Invalid
    return value


def _number(value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
        raise Invalid
    if not lo <= value <= hi:
        raise Invalid
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid
    return value


def _text(max_len: int, *, nullable: bool = False, min_len: int = 0) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not min_len <= len(value) <= max_len or "\x00" in value:
            raise Invalid
        return value

    return check


def _network(value: Any) -> str:
    if value not in NETWORK_TYPES:
        raise Invalid
    return value


def _ssid(value: Any) -> str | None:
    if value is None:
        return None
    # PROTOCOL.md: unquoted. Android's WifiInfo quotes SSIDs; a quoted one is an agent bug.
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or (len(value) >= 2 and value[0] == value[-1] == '"'):
        raise Invalid
    return value


def _ip(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid from None


def _apps_hash(value: Any) -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise Invalid
    return value


def _kids(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_KIDS:
        raise Invalid
    if not all(isinstance(k, str) and 1 <= len(k) <= 32 for k in value):
        raise Invalid
    return value


FIELDS: dict[str, Callable[[Any], Any]] = {
    "battery_pct": lambda v: _int(v, 0, 100),
    "charging": _bool,
    "battery_temp_c": lambda v: _number(v, -60.0, 150.0),
    "mem_total_mb": lambda v: _int(v, 0, _INT32),
    "mem_avail_mb": lambda v: _int(v, 0, _INT32),
    "storage_total_mb": lambda v: _int(v, 0, _INT32),
    "storage_free_mb": lambda v: _int(v, 0, _INT32),
    "network_type": _network,
    "wifi_ssid": _ssid,
    "wifi_rssi": lambda v: _int(v, -150, 0),
    "ip_address": _ip,
    "foreground_app": _text(255),
    "uptime_s": lambda v: _int(v, 0, 2**62),
    "agent_version": _text(64),
    "fcm_token": _text(512),
    "apps_hash": _apps_hash,
    "device_time": lambda v: _int(v, 0, 2**40),
    "kids": _kids,
    "bad_envelopes": lambda v: _int(v, 0, 1_000_000),
}


def clean(data: dict) -> tuple[dict, list[str]]:
    """(accepted values by field name, names of the fields dropped as invalid)."""
    accepted, ignored = {}, []
    for name, check in FIELDS.items():
        if name not in data:
            continue
        try:
            accepted[name] = check(data[name])
        except Invalid:
            ignored.append(name)
    return accepted, ignored


# Fields stored as they are in DeviceStatus columns (the others are derived or live elsewhere).
STATUS_COLUMNS = (
    "battery_pct",
    "charging",
    "battery_temp_c",
    "mem_total_mb",
    "mem_avail_mb",
    "storage_total_mb",
    "storage_free_mb",
    "network_type",
    "wifi_ssid",
    "wifi_rssi",
    "ip_address",
    "foreground_app",
    "uptime_s",
    "agent_version",
    "apps_hash",
    "device_time",
    "kids",
)
# The history sample's columns (all present in DeviceStatus under the same names).
SAMPLE_COLUMNS = (
    "battery_pct",
    "charging",
    "battery_temp_c",
    "mem_avail_mb",
    "storage_free_mb",
    "network_type",
    "wifi_rssi",
)
