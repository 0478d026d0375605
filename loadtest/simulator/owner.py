"""What a simulated device holds of the policy channel (PROTOCOL.md v1.1): its Device Owner state,
the policy record it keeps, and each item applied to that state as the headless Java agent does
it (android-agent/core: PolicyApplier checks each value's shape, SimulatedPolicy and
DeviceOwnerSettings change only what Android 14 lets a Device Owner change). The refusals and
their reasons are the Java agent's, so a policy the server accepts but a device would refuse (a
setting only WRITE_SECURE_SETTINGS may write, a kiosk app that is not installed, freeze periods
Android's SystemUpdatePolicy rejects) fails here as it would there.

`apply_items` is the only entry point; `required_app` is how it installs a required app (the
installer, by the fleet), awaited only when the installed version is not the required one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from loadtest.simulator.installer import ApkSpec

ITEMS = ("shell_allowlist", "restrictions", "settings", "system_update", "wifi", "apps", "kiosk")  # what one needs first
OWN_PACKAGE = "dev.mdm.agent"
MAX_REASON = 256
PACKAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
ACTIVITY_RE = re.compile(r"\.?[A-Za-z][A-Za-z0-9_$]*(\.[A-Za-z][A-Za-z0-9_$]*)*")
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
MONTH_DAY_RE = re.compile(r"(\d\d)-(\d\d)")
WIFI_SECURITY = ("open", "wpa2", "wpa3", "eap")
MAX_FREEZE_DAYS, MIN_FREEZE_GAP_DAYS = 90, 60
DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DAYS_BEFORE_MONTH = tuple(sum(DAYS_IN_MONTH[:m]) for m in range(12))
PLUGGED_ANY = 1 | 2 | 4  # BatteryManager.BATTERY_PLUGGED_AC | USB | WIRELESS
# UserManager.DISALLOW_* names a Device Owner may add on Android 14 (the agent's UserRestrictions).
USER_RESTRICTIONS = frozenset({
    "no_add_managed_profile", "no_add_user", "no_add_wifi_config", "no_adjust_volume", "no_airplane_mode",
    "no_ambient_display", "no_autofill", "no_bluetooth", "no_bluetooth_sharing", "no_cellular_2g",
    "no_change_wifi_state", "no_config_bluetooth", "no_config_brightness", "no_config_cell_broadcasts",
    "no_config_credentials", "no_config_date_time", "no_config_default_apps", "no_config_locale",
    "no_config_location", "no_config_mobile_networks", "no_config_screen_timeout", "no_config_tethering",
    "no_config_vpn", "no_config_wifi", "no_content_capture", "no_content_suggestions", "no_control_apps",
    "no_create_windows", "no_cross_profile_copy_paste", "no_data_roaming", "no_debugging_features",
    "no_factory_reset", "no_fun", "no_grant_admin", "no_install_apps", "no_install_unknown_sources",
    "no_install_unknown_sources_globally", "no_modify_accounts", "no_network_reset", "no_outgoing_beam",
    "no_outgoing_calls", "no_physical_media", "no_printing", "no_remove_managed_profile", "no_remove_user",
    "no_safe_boot", "no_set_user_icon", "no_set_wallpaper", "no_share_location", "no_sharing_admin_configured_wifi",
    "no_sms", "no_system_error_dialogs", "no_ultra_wideband_radio", "no_uninstall_apps", "no_unified_password",
    "no_usb_file_transfer", "no_user_switch", "no_wifi_direct", "no_wifi_tethering", "no_record_audio",
    "no_unmute_microphone", "no_camera", "ensure_verify_apps", "disallow_camera_toggle", "disallow_microphone_toggle",
    "disallow_config_private_dns", "no_sharing_into_profile", "no_add_clone_profile",
})


class Invalid(ValueError):
    """A value of the wrong shape: the item is `failed`, "invalid value: ..."."""


class RetryLater(Exception):
    """A required app's download is worth another try: the item is `pending`."""


def applied() -> dict:
    return {"state": "applied"}


def _status(state: str, reason: str) -> dict:
    return {"state": state, "reason": reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"}


def failed(reason: str) -> dict:
    return _status("failed", reason)


def unsupported(reason: str) -> dict:
    return _status("unsupported", reason)


def pending(reason: str) -> dict:
    return _status("pending", reason)


def java_list(values) -> str:
    return "[" + ", ".join(values) + "]"


@dataclass
class DeviceOwner:
    """SimulatedPolicy's state. Usage access and the battery-optimisation exemption are app-ops a
    Device Owner cannot grant itself (only adb could): never held by a simulated device."""

    usage_access: bool = False
    battery_optimization_exempt: bool = False
    lock_task_active: bool = False
    lock_task_packages: list = field(default_factory=list)
    lock_task_features: str = "NONE"
    persistent_home: str | None = None
    relaunch: bool = False
    global_settings: dict = field(default_factory=lambda: {
        "stay_on_while_plugged_in": "0", "auto_time": "1", "auto_time_zone": "1", "data_roaming": "0"})
    system_settings: dict = field(default_factory=lambda: {
        "screen_off_timeout": "60000", "screen_brightness": "128", "screen_brightness_mode": "1"})
    restrictions: set = field(default_factory=set)
    wifi: dict = field(default_factory=dict)  # id -> {ssid, security, hidden}: the passphrase is the Wi-Fi stack's
    hidden: set = field(default_factory=set)
    system_update: dict | None = None
    shell_allowlist: list | None = None  # None: the agent's built-in list


@dataclass
class PolicyRecord:
    """The agent's PolicyStore record: the document as signed, its version (the heartbeat's
    `policy_version`), the value last applied per item (to undo what a changed item added), and
    the status report and whether the server has it."""

    text: str | None = None
    document: dict | None = None
    version: int = 0
    last_values: dict = field(default_factory=dict)
    status: dict | None = None
    posted: bool = True
    # The channel's triggers (loadtest.simulator.policy).
    fetch: bool = False
    fetching: bool = False  # a GET in flight: a heartbeat meanwhile asks for nothing more
    reapply: bool = False
    refetch_after_heartbeat: bool = False
    retrying: bool = False
    task: object = None

    def has_pending(self) -> bool:
        return bool(self.status) and any(s.get("state") == "pending" for s in self.status["items"].values())


# --- shapes (PolicyApplier) --------------------------------------------------------------------
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


def _integer(value) -> int | None:
    """Json.integer: an integral JSON number, not a bool, not a string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == int(value) and abs(value) < 9.0e15:
        return int(value)
    return None


def _flag(o: dict, key: str, item: str) -> bool:
    v = o.get(key)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise Invalid(f"{item}.{key} must be a boolean")
    return v


def is_package(s) -> bool:
    return isinstance(s, str) and len(s) <= 255 and PACKAGE_RE.fullmatch(s) is not None


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
            v = _integer(o.get(key))
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


def freeze_problem(periods) -> str | None:
    """SystemUpdatePolicy.validateFreezePeriods: each at most 90 days, at least 60 days between them."""
    spans = []
    for sm, sd, em, ed in periods:
        start, end = DAYS_BEFORE_MONTH[sm - 1] + sd, DAYS_BEFORE_MONTH[em - 1] + ed
        length = (end - start if end >= start else end + 365 - start) + 1
        if length > MAX_FREEZE_DAYS:
            return f"Freeze period {sm:02d}-{sd:02d}..{em:02d}-{ed:02d} is too long: {length} days"
        spans.append((start, start + length - 1))
    spans.sort()
    for i, (_, cur_end) in enumerate(spans):
        next_start = spans[i + 1][0] if i + 1 < len(spans) else spans[0][0] + 365
        if len(spans) > 1 and next_start - cur_end - 1 < MIN_FREEZE_GAP_DAYS:
            return f"Freeze periods are too close together: {next_start - cur_end - 1} days apart"
    return None


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
    apk_id = raw if isinstance(raw, str) else str(_integer(raw)) if _integer(raw) is not None else None
    if not apk_id or len(apk_id) > 128:
        raise Invalid("apk_id is required")
    if not is_package(r.get("package")):
        raise Invalid("package must be a package name")
    code, sha, size = _integer(r.get("version_code")), r.get("sha256"), _integer(r.get("size"))
    if code is None or code < 0:
        raise Invalid("version_code must be a non-negative integer")
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise Invalid("sha256 must be 64 hex digits")
    if size is None or size <= 0:
        raise Invalid("size must be a positive integer")
    return ApkSpec(apk_id, r["package"], code, sha.lower(), size)


# --- the Device Owner (SimulatedPolicy, DeviceOwnerSettings) -----------------------------------
def _setting(key: str, v) -> tuple[str, str, str]:
    """(namespace, Android key, value as the settings provider stores it), or Invalid saying why not."""
    def boolean() -> bool:
        if not isinstance(v, bool):
            raise Invalid("must be true or false")
        return v

    def ranged(low: int, high: int) -> int:
        n = _integer(v)
        if n is None or not low <= n <= high:
            raise Invalid(f"must be an integer from {low} to {high}")
        return n

    if key == "stay_on_while_plugged":
        return "global", "stay_on_while_plugged_in", str(PLUGGED_ANY) if boolean() else "0"
    if key == "screen_off_timeout_s":
        return "system", "screen_off_timeout", str(ranged(5, 86_400) * 1000)
    if key == "screen_brightness":
        return "system", "screen_brightness", str(ranged(0, 255))
    if key == "screen_brightness_auto":
        return "system", "screen_brightness_mode", "1" if boolean() else "0"
    simple = {"auto_time": "auto_time", "auto_time_zone": "auto_time_zone", "data_roaming": "data_roaming",
              "wifi_configs_lockdown": "wifi_device_owner_configs_lockdown"}
    if key in simple:
        return "global", simple[key], "1" if boolean() else "0"
    raise Invalid("not a setting a Device Owner may change")


def apply_settings(owner: DeviceOwner, settings: dict) -> dict:
    refused = []
    for key in sorted(settings):
        try:
            namespace, android_key, value = _setting(key, settings[key])
        except Invalid as exc:
            refused.append(f"{key}: {exc}")
            continue
        (owner.system_settings if namespace == "system" else owner.global_settings)[android_key] = value
    return failed("; ".join(refused)) if refused else applied()


def apply_kiosk(owner: DeviceOwner, o: dict, installed: dict) -> dict:
    package = o.get("package")
    if not is_package(package):
        raise Invalid("kiosk.package must be a package name")
    activity = o.get("activity")
    if activity is not None and not (isinstance(activity, str) and len(activity) <= 255 and ACTIVITY_RE.fullmatch(activity)):
        raise Invalid("kiosk.activity must be a class name")
    lock_task, relaunch = _flag(o, "lock_task", "kiosk"), _flag(o, "relaunch", "kiosk")
    status_bar = _flag(o, "status_bar", "kiosk")
    if package not in installed:
        return failed(f"{package} is not installed")
    if relaunch and not lock_task and not owner.usage_access:
        # Without lock task the agent must watch the foreground app, which needs usage access.
        return failed("relaunch without lock_task needs usage access, which a Device Owner cannot grant itself: "
                      f"adb shell appops set {OWN_PACKAGE} GET_USAGE_STATS allow")
    owner.lock_task_packages = [package, OWN_PACKAGE] if lock_task else []
    owner.lock_task_features = "SYSTEM_INFO|NOTIFICATIONS" if status_bar else "NONE"
    owner.persistent_home = f"{package}/{activity or '.MainActivity'}"
    owner.relaunch, owner.lock_task_active = relaunch, lock_task
    return applied()


def apply_restrictions(owner: DeviceOwner, wanted: list[str], previous: list[str] | None) -> dict:
    active = owner.restrictions - set(previous or ())
    unknown = [r for r in wanted if r not in USER_RESTRICTIONS]
    active.update(r for r in wanted if r in USER_RESTRICTIONS)
    owner.restrictions = active
    return failed(f"not Android user restrictions: {java_list(unknown)}") if unknown else applied()


def apply_blocked(owner: DeviceOwner, blocked: list[str], previous: list[str] | None, installed: dict) -> dict:
    hidden = owner.hidden - set(previous or ())
    refused = []
    for package in blocked:
        if package == OWN_PACKAGE:
            refused.append(f"{package} (the Device Owner cannot hide itself)")
        elif package in installed:
            hidden.add(package)  # one not installed: hidden once it appears and the policy is applied again
    owner.hidden = hidden
    return failed(f"setApplicationHidden refused: {java_list(refused)}") if refused else applied()


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
