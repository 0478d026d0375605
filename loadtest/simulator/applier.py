"""A policy's items applied to a simulated Device Owner (PROTOCOL.md v1.1), as the headless Java
agent's PolicyApplier does it: the shape of each value checked once (a wrong one is `failed`,
"invalid value: ..."), an unknown item `unsupported`, the items in an order where what one needs
comes first (the kiosk package may be a required app), and the previous value of each item passed
on so a change can undo what the old value added. The Device Owner side is owner.py.

`apply_items` is the entry point; `required_app` installs a required app (the fleet's installer),
awaited only when the installed version is not the required one.
"""

from __future__ import annotations

import re
from typing import Awaitable, Callable

from loadtest.simulator.installer import ApkSpec
from loadtest.simulator.owner import (
    DAYS_IN_MONTH,
    DeviceOwner,
    Invalid,
    applied,
    apply_blocked,
    apply_kiosk,
    apply_restrictions,
    apply_settings,
    failed,
    freeze_problem,
    is_package,
    json_integer,
    pending,
    unsupported,
)

ITEMS = ("shell_allowlist", "restrictions", "settings", "system_update", "wifi", "apps", "kiosk")  # what one needs first
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
MONTH_DAY_RE = re.compile(r"(\d\d)-(\d\d)")
WIFI_SECURITY = ("open", "wpa2", "wpa3", "eap")


class RetryLater(Exception):
    """A required app's download is worth another try: the item is `pending`."""


# --- shapes ----------------------------------------------------------------------------------
def _object(value, name: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object")
    return value


def _strings(value, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{name} must be an array of strings")
    return value


def _lenient_strings(value) -> list[str]:
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else []


def _allowlist(value) -> list[list[str]]:
    if not isinstance(value, list):
        raise Invalid("shell_allowlist must be an array of argv prefixes")
    prefixes = []
    for i, prefix in enumerate(value):
        if isinstance(prefix, list):
            prefix = _strings(prefix, f"shell_allowlist[{i}]")
        if not isinstance(prefix, list) or not prefix:
            raise Invalid(f"shell_allowlist[{i}] must be a non-empty array of strings")
        prefixes.append(prefix)
    return prefixes


def _month_day(s) -> tuple[int, int]:
    m = MONTH_DAY_RE.fullmatch(s) if isinstance(s, str) else None
    if m is None:
        raise Invalid("a freeze period's start and end are MM-DD")
    month, day = int(m[1]), int(m[2])
    if not 1 <= month <= 12 or not 1 <= day <= DAYS_IN_MONTH[month - 1]:
        raise Invalid(f"{s} is not a day of a non-leap year")  # Android's freeze periods have no February 29
    return month, day


def _system_update(o: dict) -> dict:
    kind = o.get("type")
    if kind not in ("automatic", "windowed", "postpone"):
        raise Invalid("system_update.type must be automatic, windowed or postpone")
    window = [0, 0]
    if kind == "windowed":
        for i, key in enumerate(("window_start_min", "window_end_min")):
            v = json_integer(o.get(key))
            if v is None or not 0 <= v < 1440:
                raise Invalid(f"system_update.{key} must be 0-1439 (minutes after midnight)")
            window[i] = v
    fp = o.get("freeze_periods")
    if fp is not None and not isinstance(fp, list):
        raise Invalid("system_update.freeze_periods must be an array")
    periods = [(*_month_day(p.get("start")), *_month_day(p.get("end"))) for p in fp or [] if isinstance(p, dict)]
    if fp is not None and len(periods) != len(fp):
        raise Invalid("system_update.freeze_periods holds something that is not an object")
    return {"type": kind, "window_start_min": window[0], "window_end_min": window[1], "freeze_periods": periods}


def _wifi_config(n: dict) -> dict:
    """CommandRouter.wifiConfig's checks (the messages name the rule, never the password)."""
    ssid = n.get("ssid")
    if not isinstance(ssid, str) or not ssid or len(ssid.encode("utf-8")) > 32:
        raise Invalid("ssid must be 1-32 bytes")
    security = n.get("security")
    if security not in WIFI_SECURITY:
        raise Invalid("security must be one of open, wpa2, wpa3, eap")
    password = n.get("password")
    if password is not None and not isinstance(password, str):
        raise Invalid("password must be a string")
    if security == "open":
        if password:
            raise Invalid("an open network takes no password")
    elif security == "eap":
        if not password:
            raise Invalid("eap needs a password")
    elif password is None or not 8 <= len(password.encode("utf-16-le")) // 2 <= 63:
        raise Invalid("a WPA passphrase is 8-63 characters")
    hidden = n.get("hidden")
    if hidden is not None and not isinstance(hidden, bool):
        raise Invalid("hidden must be a boolean")
    return {"ssid": ssid, "security": security, "hidden": hidden is True}


def _wifi(value) -> list[tuple[str, dict]]:
    if not isinstance(value, list):
        raise Invalid("wifi must be an array of networks")
    out = []
    for i, n in enumerate(value):
        network_id = n.get("id") if isinstance(n, dict) else None
        if isinstance(network_id, bool) or not isinstance(network_id, (str, int, float)):
            raise Invalid(f"wifi[{i}] needs an id")
        out.append((str(network_id), _wifi_config(n)))
    return out


def _wifi_ids(prev) -> list[str]:
    return [str(n["id"]) for n in prev if isinstance(n, dict) and isinstance(n.get("id"), (str, int, float))
            and not isinstance(n.get("id"), bool)] if isinstance(prev, list) else []


def required_app_spec(r: dict) -> ApkSpec:
    """CommandRouter.checkedApkSpec: install_apk's params as the agent checks them."""
    raw = r.get("apk_id")
    apk_id = raw if isinstance(raw, str) else str(json_integer(raw)) if json_integer(raw) is not None else None
    if not apk_id or len(apk_id) > 128:
        raise Invalid("apk_id is required")
    if not is_package(r.get("package")):
        raise Invalid("package must be a package name")
    code, sha, size = json_integer(r.get("version_code")), r.get("sha256"), json_integer(r.get("size"))
    if code is None or code < 0:
        raise Invalid("version_code must be a non-negative integer")
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise Invalid("sha256 must be 64 hex digits")
    if size is None or size <= 0:
        raise Invalid("size must be a positive integer")
    return ApkSpec(apk_id, r["package"], code, sha.lower(), size)


RequiredApp = Callable[[ApkSpec], Awaitable[dict]]


async def apply_apps(owner: DeviceOwner, o: dict, prev, installed: dict, required_app: RequiredApp) -> dict:
    problems, waiting = [], []
    required = o.get("required")
    if required is not None and not isinstance(required, list):
        raise Invalid("apps.required must be an array")
    for i, r in enumerate(required or []):
        if not isinstance(r, dict):
            raise Invalid(f"apps.required[{i}] must be an object")
        spec = required_app_spec(r)
        have = installed.get(spec.package)
        if have == spec.version_code:
            continue  # desired state already: no download at every start
        if have is not None and have > spec.version_code:
            problems.append(f"{spec.package} versionCode {have} is installed, newer than the required "
                            f"{spec.version_code} (Android refuses a downgrade)")
            continue
        try:
            result = await required_app(spec)
        except RetryLater as exc:
            waiting.append(f"{spec.package}: {exc}")
            continue
        if result.get("status") != "succeeded":
            problems.append(f"{spec.package}: {result.get('error')}")
    if o.get("blocked") is not None:
        blocked = _strings(o["blocked"], "apps.blocked")
        for package in blocked:
            if not is_package(package):
                raise Invalid(f"apps.blocked holds {package}, not a package name")
        before = _lenient_strings(prev["blocked"]) if isinstance(prev, dict) and "blocked" in prev else None
        hidden = apply_blocked(owner, blocked, before, installed)
        if hidden["state"] != "applied":
            problems.append(f"blocked: {hidden['reason']}")
    if problems:
        return failed("; ".join(problems))
    return pending("; ".join(waiting)) if waiting else applied()


async def _apply_one(name: str, value, prev, owner: DeviceOwner, installed: dict, required_app: RequiredApp) -> dict:
    if name == "shell_allowlist":
        owner.shell_allowlist = _allowlist(value)
        return applied()
    if name == "restrictions":
        return apply_restrictions(owner, _strings(value, name), None if prev is None else _lenient_strings(prev))
    if name == "settings":
        return apply_settings(owner, _object(value, name))
    if name == "system_update":
        spec = _system_update(_object(value, name))
        problem = freeze_problem(spec["freeze_periods"])
        if problem:
            return failed(f"SystemUpdatePolicy.ValidationFailedException: {problem}")
        owner.system_update = spec
        return applied()
    if name == "wifi":
        wanted = _wifi(value)
        for network_id in _wifi_ids(prev) if prev is not None else ():
            owner.wifi.pop(network_id, None)
        owner.wifi.update(wanted)
        return applied()
    if name == "apps":
        return await apply_apps(owner, _object(value, name), prev, installed, required_app)
    return apply_kiosk(owner, _object(value, name), installed)


async def apply_items(items: dict, previous: dict, owner: DeviceOwner, installed: dict,
                      required_app: RequiredApp) -> dict[str, dict]:
    """{item: {"state", "reason"?}} for every item of the document, as PUT .../policy/status takes it."""
    out = {}
    for name in ITEMS:
        if name in items:
            try:
                out[name] = await _apply_one(name, items[name], previous.get(name), owner, installed, required_app)
            except Invalid as exc:
                out[name] = failed(f"invalid value: {exc}")
            except Exception as exc:  # noqa: BLE001 (the agent reports any exception as the item's failure)
                out[name] = failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    for name in items:
        if name not in ITEMS:
            out[name] = unsupported(f"this agent does not know the item {name}")
    return out
