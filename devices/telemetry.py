"""Lenient validation of heartbeat telemetry (PROTOCOL.md): a field with an invalid value is
dropped and named in `ignored_fields`; unknown fields are ignored silently; the heartbeat itself
is never refused for its content.

Every accepted value must also be one PostgreSQL takes in its column, because accepted values are
queued in Redis and written by a batch flush (devices.writebehind): text follows the v1.1 rules
(mdm.text: no NUL, no lone surrogate, lengths in code points), numbers their column's range,
dates and addresses what PostgreSQL parses. The flush isolates a bad entry anyway (defence in
depth), but an entry set aside there is a status the console never shows."""

import ipaddress
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from devices.models import DeviceStatus
from mdm import text

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # [0-9], not \d: \d matches other scripts' digits
_INT32 = 2**31 - 1
NETWORK_TYPES = frozenset(DeviceStatus.Network.values)
MAX_KIDS = 8
MAX_BAD_ENVELOPES = 10_000  # per heartbeat (PROTOCOL.md v1.1); more is not a count, it is noise


class Invalid(Exception):
    pass


def _int(value: Any, lo: int, hi: int) -> int:
    # JSON has one number type: 42.0 is accepted as 42, 42.5 and true are not.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid
    if isinstance(value, float):
        if not value.is_integer():  # NaN and infinities are not integers either
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


def _clean_text(value: Any, min_len: int, max_len: int) -> str:
    if not isinstance(value, str) or not min_len <= len(value) <= max_len or not text.is_clean(value):
        raise Invalid
    return value


def _text(max_len: int, *, nullable: bool = False, min_len: int = 0) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        return _clean_text(value, min_len, max_len)

    return check


def _network(value: Any) -> str:
    if not isinstance(value, str) or value not in NETWORK_TYPES:
        raise Invalid
    return value


def _ssid(value: Any) -> str | None:
    if value is None:
        return None
    # PROTOCOL.md: unquoted. Android's WifiInfo quotes SSIDs; a quoted one is an agent bug.
    value = _clean_text(value, 1, 64)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        raise Invalid
    return value


def _ip(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise Invalid from None
    # Python accepts an IPv6 zone ("fe80::1%wlan0"); PostgreSQL's inet does not.
    if getattr(address, "scope_id", None) is not None:
        raise Invalid
    return str(address)


def _apps_hash(value: Any) -> str:
    # fullmatch: `$` would let a trailing newline through, one character too many for the column.
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise Invalid
    return value


def _kids(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_KIDS:
        raise Invalid
    for kid in value:
        _clean_text(kid, 1, 32)
    return value


def _patch_date(value: Any) -> str:
    """"YYYY-MM-DD", a real date (an impossible one would fail the date column)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise Invalid
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise Invalid from None


def _pending_update(value: Any) -> dict | None:
    """null, or {"received_at": <unix s>, "security_patch": "YYYY-MM-DD" or null}; stored in this
    normalised form (other keys dropped)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid
    patch = value.get("security_patch")
    return {
        "received_at": _int(value.get("received_at"), 0, 2**40),
        "security_patch": None if patch is None else _patch_date(patch),
    }


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
    "foreground_app": _text(text.max_length("foreground_app")),
    "uptime_s": lambda v: _int(v, 0, 2**62),
    "agent_version": _text(text.max_length("agent_version")),
    "fcm_token": _text(text.max_length("fcm_token")),
    "apps_hash": _apps_hash,
    "device_time": lambda v: _int(v, 0, 2**40),
    "kids": _kids,
    "bad_envelopes": lambda v: _int(v, 0, MAX_BAD_ENVELOPES),
    # v1.1
    "os_version": _text(text.max_length("os_version")),
    "security_patch": _patch_date,
    "pending_system_update": _pending_update,
    # Versions are compared for equality with the server's: 32 bits keep them exact through
    # Redis's Lua (its JSON writes numbers with 14 significant digits).
    "policy_version": lambda v: _int(v, 0, _INT32),
    "lock_task_active": _bool,
    "usage_access": _bool,
    "battery_optimization_exempt": _bool,
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
    "os_version",
    "security_patch",
    "pending_system_update",
    "policy_version",
    "lock_task_active",
    "usage_access",
    "battery_optimization_exempt",
)
# Status columns stored as jsonb.
JSON_COLUMNS = frozenset({"kids", "pending_system_update"})
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
