"""What a rule's remediation may be (docs/alerts.md "Auto-remediation"): a typed command that is
safe to run unattended, a command preset of such a type, or a re-sync of the device's policy, and
its guardrails with their defaults. `check` is services.remediation_checks' hook: it validates a
rule's remediation into messages in the user's terms and rewrites it to its normal form."""

import uuid
from dataclasses import dataclass

from commands.models import CommandType, Preset, WifiConfig
from commands.params import ParamsError, validate

SYNC_POLICY = "sync_policy"
# What a rule may run unattended. Not offered: shell, uninstall_app, clear_app_data (they destroy
# data or run programs), lock and ping (they fix nothing).
ACTIONS = {
    CommandType.LAUNCH_APP: "relaunch an app, such as the kiosk app (launch_app)",
    CommandType.REBOOT: "reboot (reboot)",
    CommandType.WIFI_CONFIGURE: "push a saved Wi-Fi network again (wifi_configure)",
    CommandType.INSTALL_APK: "install an APK release again, to retry a failed install (install_apk)",
    SYNC_POLICY: "re-apply the device's policy (sync_policy)",
}


@dataclass(frozen=True)
class Limit:
    default: int
    low: int
    high: int
    message: str


GUARDRAILS = {
    "max_per_device_per_hour": Limit(3, 1, 60, "Runs per device per hour: from 1 to 60."),
    "cooldown_s": Limit(600, 0, 86400, "Cool-down between two runs on a device, in seconds: from 0 to 86400 (a day)."),
    "max_fleet_pct": Limit(10, 1, 100, "Share of the devices in the rule's scope per window, in percent: from 1 to 100."),
    "fleet_window_s": Limit(900, 60, 86400, "Window of that share, in seconds: from 60 to 86400 (a day)."),
    "stop_failure_pct": Limit(50, 1, 100, "Stop when more than this percent of the last runs failed: from 1 to 100."),
    "stop_last_runs": Limit(10, 1, 100, "How many of the last finished runs the stop looks at: from 1 to 100."),
    "expires_in_s": Limit(3600, 60, 86400, "Time a device has to run it, in seconds: from 60 to 86400 (a day)."),
}
OFFERED = "; ".join(ACTIONS.values())


def guardrails(remediation: dict) -> dict:
    return {name: remediation.get(name, limit.default) for name, limit in GUARDRAILS.items()}


# --- validation (services.remediation_checks) ----------------------------------------------------


def check(remediation, errors: dict) -> None:
    """Validate a rule's remediation, adding messages in the user's terms to `errors`; when valid,
    rewrite it in place to its normal form (guardrail defaults filled in)."""
    if not remediation:
        return
    try:
        cleaned = clean(remediation)
    except ParamsError as exc:
        errors.update(exc.errors)
        return
    remediation.clear()
    remediation.update(cleaned)


def clean(raw) -> dict:
    if not isinstance(raw, dict):
        raise ParamsError({"remediation": ["An object: what to run (type and params, or a preset) and its guardrails."]})
    errors: dict = {}
    unknown = sorted(set(raw) - {"type", "params", "preset", "preset_version", *GUARDRAILS})
    if unknown:
        errors["remediation"] = [f"Unknown: {', '.join(unknown)}. A remediation names type and params, or a preset, "
                                 f"and optionally its guardrails: {', '.join(GUARDRAILS)}."]
    has_type, has_preset = raw.get("type") not in (None, ""), raw.get("preset") not in (None, "")
    out: dict = {}
    if has_type and has_preset:
        errors["remediation"] = ["Name either what to run (type and params) or a preset, not both."]
    elif has_preset:
        out = _clean_preset(raw, errors)
    elif has_type:
        out = _clean_action(raw["type"], raw.get("params"), errors)
    else:
        errors["remediation"] = [f"Name what to run: a type ({OFFERED}) with its params, or a preset."]
    for name, limit in GUARDRAILS.items():
        value = raw.get(name, limit.default)
        if isinstance(value, bool) or not isinstance(value, int) or not limit.low <= value <= limit.high:
            errors[f"remediation.{name}"] = [limit.message]
        else:
            out[name] = value
    if errors:
        raise ParamsError(errors)
    return out


def _refused(type_) -> str:
    if isinstance(type_, str) and type_ in CommandType.values:
        return f"{CommandType(type_).label} is not run unattended. A remediation can: {OFFERED}."
    return f"Unknown remediation {str(type_)[:40]!r}. A remediation can: {OFFERED}."


def _clean_action(type_, params, errors) -> dict:
    if not isinstance(type_, str) or type_ not in ACTIONS:
        errors["remediation.type"] = [_refused(type_)]
        return {}
    params = {} if params is None else params
    if not isinstance(params, dict):
        errors["remediation.params"] = ["An object of the command's params."]
        return {}
    if type_ == SYNC_POLICY:
        if params:
            errors["remediation.params"] = ["Re-applying the policy takes no params."]
        return {"type": type_, "params": {}}
    if type_ == CommandType.WIFI_CONFIGURE:
        config = find_wifi_config(params.get("wifi_config"))
        if set(params) != {"wifi_config"} or config is None:
            errors["remediation.params.wifi_config"] = ["The name or id of a saved Wi-Fi config (a rule never holds a password)."]
            return {}
        return {"type": type_, "params": {"wifi_config": str(config.pk)}}
    try:
        cleaned = validate(type_, params)
    except ParamsError as exc:
        for name, messages in exc.errors.items():
            errors["remediation.type" if name == "type" else f"remediation.params.{name}"] = messages
        return {}
    if type_ == CommandType.INSTALL_APK:
        cleaned = {"apk_id": cleaned["apk_id"]}  # the rest is the release's, read again at each run
    return {"type": type_, "params": cleaned}


def find_wifi_config(ref) -> WifiConfig | None:
    if not isinstance(ref, str) or not ref or len(ref) > 100:
        return None
    try:
        return WifiConfig.objects.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        return WifiConfig.objects.filter(name=ref).first()


def _clean_preset(raw, errors) -> dict:
    ref, version = raw["preset"], raw.get("preset_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        errors["remediation.preset_version"] = ["A version number of the preset (1, 2, ...), or none for its latest."]
        return {}
    preset = None
    if isinstance(ref, str) and 0 < len(ref) <= 100:
        try:
            preset = Preset.objects.filter(pk=uuid.UUID(ref), archived=False).first()  # an id: that version
            version = preset.version if preset else version
        except ValueError:
            preset = find_preset(ref, version)
    if preset is None:
        errors["remediation.preset"] = [f"No preset {str(ref)[:100]!r}" + (f" version {version}" if version else "") + "."]
        return {}
    if preset.type not in ACTIONS:
        errors["remediation.preset"] = [f"The preset {preset.name} runs {preset.type}: " + _refused(preset.type)]
        return {}
    return {"preset": preset.name, **({"preset_version": version} if version else {})}


def find_preset(name: str, version: int | None) -> Preset | None:
    qs = Preset.objects.filter(name=name, archived=False)
    return (qs.filter(version=version) if version else qs.filter(is_latest=True)).first()


def describe(remediation: dict) -> str:
    """What a remediation runs, in words ("launch_app com.example.kiosk")."""
    if "preset" in remediation:
        return f"preset {remediation['preset']}" + (f" v{remediation['preset_version']}" if "preset_version" in remediation else "")
    params = remediation.get("params", {})
    detail = params.get("package") or params.get("apk_id") or params.get("wifi_config") or ""
    return f"{remediation.get('type', '')} {detail}".strip()


def action_of(remediation: dict) -> str:
    if "preset" in remediation:
        preset = find_preset(remediation["preset"], remediation.get("preset_version"))
        return preset.type if preset else ""
    return remediation.get("type", "")
