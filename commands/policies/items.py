"""The items of a policy (PROTOCOL.md v1.1 "GET /api/v1/device/policy"; docs/policies.md): each
validated server-side into what is stored, with a 400 naming the item and the field, and rendered
for the device. Every value here is something an Android 14 Device Owner can apply through the
device-policy API, never through a shell.

`clean_items(raw)` -> Cleaned(items, secret, sources) or ParamsError({"items.<item>[.<field>]": [...]}).
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import available_timezones

from commands.models import ShellAllowRule, WifiConfig
from commands.params import ACTIVITY_RE, PACKAGE_RE, ParamsError
from commands.services.shell_allowlist import is_read_only
from mdm import text

ITEMS = ("kiosk", "system_update", "settings", "restrictions", "wifi", "shell_allowlist", "apps")
MAX_ITEMS_BYTES = 64 * 1024
MAX_LIST = 100
MASK = "***"

# Android's SystemUpdatePolicy rules (FreezePeriod / validateFreezePeriods): a freeze period
# lasts at most 90 days, two of them are at least 60 days apart, counted in a 365-day year.
FREEZE_MAX_DAYS = 90
FREEZE_MIN_GAP_DAYS = 60
MAX_FREEZE_PERIODS = 10
MINUTES_PER_DAY = 1440

# settings: the keys an Android 14 Device Owner sets through DevicePolicyManager (never `settings
# put`), with their type and bounds. setGlobalSetting takes only a fixed allowlist of keys and
# setSystemSetting only the screen ones; the rest have calls of their own. The agent's
# DeviceOwnerSettings.KEYS is exactly this set (tests/test_agent_contract.py holds both to
# android-agent/core/src/test/resources/policy-settings.json); docs/policies.md lists the calls.
SETTINGS: dict[str, tuple[type, tuple | None]] = {
    "stay_on_while_plugged": (bool, None),        # setGlobalSetting(STAY_ON_WHILE_PLUGGED_IN, 7 or 0)
    "screen_off_timeout_s": (int, (5, 86400)),    # setSystemSetting(SCREEN_OFF_TIMEOUT, ms)
    "screen_brightness": (int, (0, 255)),         # setSystemSetting(SCREEN_BRIGHTNESS)
    "screen_brightness_auto": (bool, None),       # setSystemSetting(SCREEN_BRIGHTNESS_MODE)
    "auto_time": (bool, None),                    # setAutoTimeEnabled
    "auto_time_zone": (bool, None),               # setAutoTimeZoneEnabled
    "time_zone": (str, None),                     # setTimeZone (an IANA zone; needs auto_time_zone off)
    "data_roaming": (bool, None),                 # setGlobalSetting(DATA_ROAMING)
    "wifi_configs_lockdown": (bool, None),        # setConfiguredNetworksLockdownState
    "location_enabled": (bool, None),             # setLocationEnabled
    "camera_disabled": (bool, None),              # setCameraDisabled
    "screen_capture_disabled": (bool, None),      # setScreenCaptureDisabled
    "keyguard_disabled": (bool, None),            # setKeyguardDisabled (refused by the device under a PIN)
}

# UserManager restriction names a Device Owner may add on Android 14 (API 34) with
# addUserRestriction. Those only the system may set (no_record_audio, no_run_in_background,
# no_wallpaper) and the profile-only ones are left out.
RESTRICTIONS = frozenset({
    "no_add_clone_profile", "no_add_managed_profile", "no_add_user", "no_add_wifi_config", "no_adjust_volume",
    "no_airplane_mode", "no_ambient_display", "no_autofill", "no_bluetooth", "no_bluetooth_sharing", "no_camera",
    "disallow_camera_toggle", "no_cellular_2g", "no_change_wifi_state", "no_config_bluetooth", "no_config_brightness",
    "no_config_cell_broadcasts", "no_config_credentials", "no_config_date_time", "no_config_locale",
    "no_config_location", "no_config_mobile_networks", "disallow_config_private_dns", "no_config_screen_timeout",
    "no_config_tethering", "no_config_vpn", "no_config_wifi", "no_content_capture", "no_content_suggestions",
    "no_control_apps", "no_create_windows", "no_data_roaming", "no_debugging_features", "no_factory_reset", "no_fun",
    "no_grant_admin", "no_install_apps", "no_install_unknown_sources", "no_install_unknown_sources_globally",
    "disallow_microphone_toggle", "no_modify_accounts", "no_network_reset", "no_outgoing_calls", "no_physical_media",
    "no_printing", "no_remove_user", "no_safe_boot", "no_set_user_icon", "no_set_wallpaper", "no_share_location",
    "no_sharing_admin_configured_wifi", "no_sms", "no_system_error_dialogs", "no_ultra_wideband_radio",
    "no_uninstall_apps", "no_unmute_microphone", "no_usb_file_transfer", "no_user_switch", "no_wifi_direct",
    "no_wifi_tethering", "ensure_verify_apps",
})
MMDD_RE = re.compile(r"^(\d\d)-(\d\d)$")

# The `apps` item's required apps come from the APK registry, which apks/ owns (above commands/):
# apks registers a resolver at start-up (apks.apps), as for install_apk's params.
# resolver(apk_id) -> {"package", "apk_id", "version_code", "sha256", "size"} or None (unknown).
_apps_resolver = None


def register_apps_resolver(resolver) -> None:
    global _apps_resolver
    _apps_resolver = resolver


@dataclass
class Cleaned:
    items: dict  # what is stored and shown (Wi-Fi entries without their password)
    secret: dict = field(default_factory=dict)  # {wifi config id: password}
    sources: dict = field(default_factory=dict)


def _fail(name: str, message: str):
    raise ParamsError({f"items.{name}": [message]})


def _only(value: dict, item: str, known) -> None:
    unknown = sorted(set(value) - set(known))
    if unknown:
        _fail(f"{item}.{unknown[0]}", f"Unknown field; {item} takes {', '.join(known)}.")


def _bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        _fail(name, "Must be true or false.")
    return value


def _int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(name, f"An integer from {low} to {high}.")
    return value


def _obj(value, name: str) -> dict:
    if not isinstance(value, dict):
        _fail(name, "Must be an object.")
    return value


def _list(value, name: str, limit: int = MAX_LIST) -> list:
    if not isinstance(value, list) or len(value) > limit:
        _fail(name, f"Must be a list of at most {limit} entries.")
    return value


def _kiosk(value, out: Cleaned) -> dict:
    value = _obj(value, "kiosk")
    _only(value, "kiosk", ("package", "activity", "lock_task", "relaunch", "status_bar"))
    package = value.get("package")
    if not isinstance(package, str) or len(package) > 255 or not PACKAGE_RE.match(package):
        _fail("kiosk.package", "A package name like com.example.kiosk is required.")
    cleaned = {"package": package}
    activity = value.get("activity")
    if activity not in (None, ""):
        if not isinstance(activity, str) or len(activity) > 255 or not ACTIVITY_RE.match(activity):
            _fail("kiosk.activity", "An activity class name like .MainActivity or com.example.kiosk.Main.")
        cleaned["activity"] = activity
    cleaned["lock_task"] = _bool(value.get("lock_task", True), "kiosk.lock_task")
    cleaned["relaunch"] = _bool(value.get("relaunch", True), "kiosk.relaunch")
    cleaned["status_bar"] = _bool(value.get("status_bar", False), "kiosk.status_bar")
    return cleaned


def _day_of_year(text, name: str) -> int:
    match = MMDD_RE.match(text) if isinstance(text, str) else None
    if match is None:
        _fail(name, "A month and day as MM-DD, e.g. 12-01.")
    month, day = int(match[1]), int(match[2])
    if (month, day) == (2, 29):
        _fail(name, "Android counts freeze periods in a 365-day year: use 02-28 or 03-01.")
    try:
        return date(2001, month, day).timetuple().tm_yday  # 2001: not a leap year
    except ValueError:
        _fail(name, f"{text} is not a day of the year.")


def _freeze_periods(value) -> list[dict]:
    periods = _list(value, "system_update.freeze_periods", MAX_FREEZE_PERIODS)
    spans = []
    for i, period in enumerate(periods):
        name = f"system_update.freeze_periods[{i}]"
        period = _obj(period, name)
        _only(period, name, ("start", "end"))
        start = _day_of_year(period.get("start"), f"{name}.start")
        end = _day_of_year(period.get("end"), f"{name}.end")
        length = (end - start) % 365 + 1  # inclusive; a period may run over the new year
        if length > FREEZE_MAX_DAYS:
            _fail(name, f"{period['start']} to {period['end']} is {length} days; a freeze period lasts at most {FREEZE_MAX_DAYS} days.")
        spans.append((start, length, period["start"], period["end"]))
    spans.sort()
    for i, (start, length, start_text, end_text) in enumerate(spans if len(spans) > 1 else []):
        following = spans[(i + 1) % len(spans)]
        next_start = following[0] + (365 if i + 1 == len(spans) else 0)  # the first one again, next year
        gap = next_start - (start + length)  # free days between this end and the next start
        if gap < FREEZE_MIN_GAP_DAYS:
            _fail("system_update.freeze_periods",
                  f"{start_text}..{end_text} and the period from {following[2]} are {max(gap, 0)} days apart"
                  f"{' (they overlap)' if gap < 0 else ''}; Android needs at least {FREEZE_MIN_GAP_DAYS} days between freeze periods.")
    return [{"start": s, "end": e} for _, _, s, e in spans]


def _system_update(value, out: Cleaned) -> dict:
    value = _obj(value, "system_update")
    _only(value, "system_update", ("type", "window_start_min", "window_end_min", "freeze_periods"))
    kind = value.get("type")
    if kind not in ("automatic", "windowed", "postpone"):
        _fail("system_update.type", "One of automatic, windowed, postpone.")
    cleaned = {"type": kind}
    if kind == "windowed":
        for name in ("window_start_min", "window_end_min"):
            cleaned[name] = _int(value.get(name), f"system_update.{name}", 0, MINUTES_PER_DAY - 1)
    else:
        for name in ("window_start_min", "window_end_min"):
            if value.get(name) is not None:
                _fail(f"system_update.{name}", "Only a windowed policy has a window.")
    cleaned["freeze_periods"] = _freeze_periods(value.get("freeze_periods", []))
    return cleaned


def _settings(value, out: Cleaned) -> dict:
    value = _obj(value, "settings")
    _only(value, "settings", tuple(SETTINGS))
    cleaned = {}
    for key, given in value.items():
        kind, bounds = SETTINGS[key]
        name = f"settings.{key}"
        if kind is bool:
            cleaned[key] = _bool(given, name)
        elif kind is int:
            cleaned[key] = _int(given, name, *bounds)
        elif not isinstance(given, str) or given not in _time_zones():
            _fail(name, "An IANA time zone name like Europe/Paris.")
        else:
            cleaned[key] = given
    if "time_zone" in cleaned and cleaned.get("auto_time_zone") is not False:
        _fail("settings.time_zone", "A fixed time zone needs auto_time_zone set to false.")
    return cleaned


_ZONES: frozenset | None = None


def _time_zones() -> frozenset:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def _restrictions(value, out: Cleaned) -> list[str]:
    value = _list(value, "restrictions")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in RESTRICTIONS:
            _fail(f"restrictions[{i}]", "Not an Android user restriction a Device Owner may set (e.g. no_factory_reset).")
    return sorted(set(value))


def _wifi(value, out: Cleaned) -> list[dict]:
    """References to stored Wi-Fi configs ([{"id": ...}] or [id, ...]); their values are copied
    into the version (the password encrypted), so a version never changes after it is made."""
    value = _list(value, "wifi", 50)
    ids = []
    for i, entry in enumerate(value):
        raw = entry.get("id") if isinstance(entry, dict) else entry
        try:
            ids.append(str(uuid.UUID(raw)))
        except (TypeError, ValueError, AttributeError):
            _fail(f"wifi[{i}].id", "The id of a stored Wi-Fi config (GET /api/v1/wifi-configs lists them).")
    configs = {str(c.pk): c for c in WifiConfig.objects.filter(pk__in=ids)}
    cleaned, seen = [], set()
    for i, config_id in enumerate(ids):
        config = configs.get(config_id)
        if config is None:
            _fail(f"wifi[{i}].id", f"No Wi-Fi config {config_id}.")
        if config.ssid in seen:
            _fail(f"wifi[{i}].id", f"SSID {config.ssid!r} is listed twice.")
        seen.add(config.ssid)
        cleaned.append({"id": config_id, "ssid": config.ssid, "security": config.security, "hidden": config.hidden})
        if config.has_password:
            out.secret[config_id] = config.decrypted_password()
    return cleaned


def _shell_allowlist(value, out: Cleaned) -> list[list[str]]:
    """"console" (the console's allowlist as it is now) or argv prefixes; either way only read-only
    diagnostics: a `shell` command runs as the agent's own user (PROTOCOL.md v1.1)."""
    if value == "console":
        prefixes = [rule.argv_prefix for rule in ShellAllowRule.objects.filter(enabled=True)]
        out.sources["shell_allowlist"] = "console"
        name = "shell_allowlist (the console's allowlist)"
    else:
        prefixes = _list(value, "shell_allowlist")
        name = "shell_allowlist"
    cleaned = []
    for i, prefix in enumerate(prefixes):
        if (not isinstance(prefix, list) or not prefix or len(prefix) > 16
                or not all(isinstance(a, str) and 0 < len(a) <= 256 and text.is_clean(a) for a in prefix)):
            _fail(f"shell_allowlist[{i}]", "An argv prefix: a non-empty array of at most 16 non-empty strings "
                                           "(256 characters each, no NUL or lone surrogate).")
        if not is_read_only(prefix):
            _fail(f"{name}[{i}]" if value != "console" else name,
                  f"{prefix!r} is not a read-only diagnostic the agent's user can run (see docs/policies.md).")
        if prefix not in cleaned:
            cleaned.append(prefix)
    return cleaned


def _apps(value, out: Cleaned) -> dict:
    value = _obj(value, "apps")
    _only(value, "apps", ("required", "blocked"))
    if _apps_resolver is None:
        _fail("apps", "Required apps need the APK registry, which is not installed.")
    required, packages = [], set()
    for i, entry in enumerate(_list(value.get("required", []), "apps.required")):
        raw = entry.get("apk_id") if isinstance(entry, dict) else entry
        release = _apps_resolver(raw) if isinstance(raw, str) and len(raw) <= 64 else None
        if release is None:
            _fail(f"apps.required[{i}].apk_id", "The id of an uploaded APK release (GET /api/v1/apks lists them).")
        if release["package"] in packages:
            _fail(f"apps.required[{i}].apk_id", f"{release['package']} is required twice.")
        packages.add(release["package"])
        required.append(release)
    blocked = []
    for i, package in enumerate(_list(value.get("blocked", []), "apps.blocked")):
        if not isinstance(package, str) or len(package) > 255 or not PACKAGE_RE.match(package):
            _fail(f"apps.blocked[{i}]", "A package name like com.example.app.")
        if package in packages:
            _fail(f"apps.blocked[{i}]", f"{package} is also required.")
        if package not in blocked:
            blocked.append(package)
    return {"required": required, "blocked": sorted(blocked)}


CLEANERS = {"kiosk": _kiosk, "system_update": _system_update, "settings": _settings, "restrictions": _restrictions,
            "wifi": _wifi, "shell_allowlist": _shell_allowlist, "apps": _apps}


def clean_items(raw) -> Cleaned:
    if not isinstance(raw, dict):
        raise ParamsError({"items": ["Must be an object of policy items: " + ", ".join(ITEMS) + "."]})
    unknown = sorted(set(raw) - set(ITEMS))
    if unknown:
        raise ParamsError({"items": [f"Unknown item {unknown[0]!r}; items are {', '.join(ITEMS)}."]})
    try:
        size = len(json.dumps(raw))
    except (TypeError, ValueError):
        raise ParamsError({"items": ["Must be JSON."]}) from None
    if size > MAX_ITEMS_BYTES:
        raise ParamsError({"items": [f"At most {MAX_ITEMS_BYTES // 1024} KiB of JSON."]})
    out = Cleaned(items={})
    for name in ITEMS:  # a fixed order: the first error is always the same one
        if name in raw and raw[name] is not None:
            out.items[name] = CLEANERS[name](raw[name], out)
    return out


def for_device(items: dict, secret: dict) -> dict:
    """The items as the device gets them: Wi-Fi entries with their passwords."""
    rendered = dict(items)
    if "wifi" in items:
        rendered["wifi"] = [{**entry, "password": secret.get(entry["id"], "")} for entry in items["wifi"]]
    return rendered


def masked(items: dict) -> dict:
    """The items as the admin API, the console, audit records and logs show them."""
    shown = dict(items)
    if "wifi" in items:
        shown["wifi"] = [{**entry, "password": MASK} for entry in items["wifi"]]
    return shown
