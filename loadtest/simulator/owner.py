"""What a simulated device holds of the policy channel (PROTOCOL.md v1.1): its Device Owner state,
the policy record it keeps, and what Android 14 lets a Device Owner do with each item, as the
headless Java agent simulates it (android-agent/core: SimulatedPolicy, DeviceOwnerSettings,
UserRestrictions, ItemStatus): lock task and the persistent HOME activity for an installed
package only, SystemUpdatePolicy's freeze-period rules, only the settings DevicePolicyManager
lets a DPC write, only known user restrictions, hidden apps except itself. The shapes of the
values and the order of the items are applier.py's (the agent's PolicyApplier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OWN_PACKAGE = "dev.mdm.agent"
MAX_REASON = 256
PACKAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
ACTIVITY_RE = re.compile(r"\.?[A-Za-z][A-Za-z0-9_$]*(\.[A-Za-z][A-Za-z0-9_$]*)*")
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


# --- values, as the agent reads them -----------------------------------------------------------
def json_integer(value) -> int | None:
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


# --- the Device Owner (SimulatedPolicy, DeviceOwnerSettings) -----------------------------------
def _setting(key: str, v) -> tuple[str, str, str]:
    """(namespace, Android key, value as the settings provider stores it), or Invalid saying why not."""
    def boolean() -> bool:
        if not isinstance(v, bool):
            raise Invalid("must be true or false")
        return v

    def ranged(low: int, high: int) -> int:
        n = json_integer(v)
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
              "wifi_configs_lockdown": "wifi_device_owner_configs_lockdown", "location_enabled": "location_mode"}
    if key in simple:
        return "global", simple[key], "1" if boolean() else "0"
    if key in ("camera_disabled", "screen_capture_disabled", "keyguard_disabled"):
        return "policy", key, "1" if boolean() else "0"  # DevicePolicyManager's own state, not a setting
    if key == "time_zone":
        if not (isinstance(v, str) and 0 < len(v) <= 64 and v in _zones()):
            raise Invalid("must be an IANA time zone name")
        return "policy", "time_zone", v
    raise Invalid("not a setting a Device Owner may change")


# The agent's DeviceOwnerSettings.KEYS order: auto_time_zone goes before time_zone (setTimeZone is
# refused while the automatic time zone is on).
SETTINGS_ORDER = ("stay_on_while_plugged", "screen_off_timeout_s", "screen_brightness", "screen_brightness_auto",
                  "auto_time", "auto_time_zone", "time_zone", "data_roaming", "wifi_configs_lockdown",
                  "location_enabled", "camera_disabled", "screen_capture_disabled", "keyguard_disabled")


def _zones() -> set:
    from zoneinfo import available_timezones

    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


_ZONES: set = set()


def apply_settings(owner: DeviceOwner, settings: dict) -> dict:
    """As DeviceOwnerSettings: refused values make the item failed (naming each), keys outside
    the set make it unsupported (named), both together failed."""
    refused, unknown = [], []
    for key in sorted(settings, key=lambda k: (SETTINGS_ORDER.index(k) if k in SETTINGS_ORDER else 99, k)):
        if key not in SETTINGS_ORDER:
            unknown.append(key)
            continue
        try:
            namespace, android_key, value = _setting(key, settings[key])
            if key == "time_zone" and owner.global_settings.get("auto_time_zone", "1") == "1":
                raise Invalid("refused while auto_time_zone is on (setTimeZone returns false)")
        except Invalid as exc:
            refused.append(f"{key}: {exc}")
            continue
        target = {"system": owner.system_settings, "global": owner.global_settings}.get(namespace, owner.global_settings)
        target[android_key if namespace != "policy" else f"dpm:{android_key}"] = value
    not_settings = "not settings a Device Owner can change: " + ", ".join(unknown) if unknown else None
    if refused:
        return failed("; ".join(refused + ([not_settings] if not_settings else [])))
    return unsupported(not_settings) if not_settings else applied()


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
