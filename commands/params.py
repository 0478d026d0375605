"""Validation of command params per type (PROTOCOL.md "Types"). One place, used by the API,
the console and presets. Errors are a dict {field: [messages]} ready for the 400 answer."""

import re
import shlex

from commands.models import CommandType, ShellAllowRule

PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")
ACTIVITY_RE = re.compile(r"^[A-Za-z0-9_.$/]+$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_ARGV = 64
MAX_ARG_LEN = 1024
NO_APK_REGISTRY = "install_apk needs the APK registry (the apks app), which this server does not run."
SHELL_RULE = "shell allowlist"


class ParamsError(Exception):
    def __init__(self, errors: dict, code: str = "invalid"):
        super().__init__(errors)
        self.errors = errors
        self.code = code

    @property
    def detail(self) -> str:
        name, messages = next(iter(self.errors.items()))
        return f"{name}: {messages[0]}"


def _require_obj(params) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ParamsError({"params": ["Must be a JSON object."]})
    return params


def _package(params, errors, name="package", required=True):
    value = params.get(name)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not PACKAGE_RE.match(value) or len(value) > 255:
        errors[name] = ["A package name like com.example.app is required."]
        return None
    return value


def _no_params(params, errors):
    return {}


def _launch_app(params, errors):
    out = {"package": _package(params, errors)}
    activity = params.get("activity")
    if activity not in (None, ""):
        if not isinstance(activity, str) or not ACTIVITY_RE.match(activity) or len(activity) > 255:
            errors["activity"] = ["An activity class name like .MainActivity or com.example.app.Main."]
        else:
            out["activity"] = activity
    return out


def _package_only(params, errors):
    return {"package": _package(params, errors)}


def allow_rules() -> list[ShellAllowRule]:
    return list(ShellAllowRule.objects.filter(enabled=True))


def check_shell_argv(argv) -> list[str]:
    """Checks argv against the allowlist; raises ParamsError naming the rule."""
    if isinstance(argv, str):
        raise ParamsError(
            {"argv": [f"A plain command string is refused (rule: {SHELL_RULE} takes argv arrays only, run without a shell); send an array of strings."]}
        )
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
        raise ParamsError({"argv": ["Must be a non-empty array of non-empty strings."]})
    if len(argv) > MAX_ARGV or any(len(a) > MAX_ARG_LEN for a in argv):
        raise ParamsError({"argv": [f"At most {MAX_ARGV} arguments of at most {MAX_ARG_LEN} characters."]})
    rules = allow_rules()
    if not any(rule.matches(argv) for rule in rules):
        allowed = ", ".join(shlex.join(rule.argv_prefix) for rule in rules) or "none"
        raise ParamsError(
            {"argv": [f"Refused by the {SHELL_RULE}: {shlex.join(argv)} does not start with an allowed prefix (allowed: {allowed})."]},
            code="not_allowed",
        )
    return argv


def _shell(params, errors):
    return {"argv": check_shell_argv(params.get("argv"))}


# install_apk's params come from an APK release, which apks/ owns; commands/ sits below apks/ in
# the app order, so apks registers its resolver here at start-up (apks.apps) instead of being
# imported. resolver(params, errors) -> the cleaned params (apk_id, package, version_code,
# sha256, size), adding to `errors` what is wrong.
_install_apk_resolver = None


def register_install_apk(resolver) -> None:
    global _install_apk_resolver
    _install_apk_resolver = resolver


def _install_apk(params, errors):
    if _install_apk_resolver is None:
        raise ParamsError({"type": [NO_APK_REGISTRY]}, code="not_available")
    return _install_apk_resolver(params, errors)


def _wifi(params, errors):
    ssid = params.get("ssid")
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= 32:
        errors["ssid"] = ["An SSID of 1-32 bytes is required."]
    security = params.get("security", "wpa2")
    if security not in ("open", "wpa2", "wpa3", "eap"):
        errors["security"] = ["One of open, wpa2, wpa3, eap."]
    password = params.get("password", "")
    if password is None:
        password = ""
    if not isinstance(password, str):
        errors["password"] = ["Must be a string."]
    elif security in ("wpa2", "wpa3") and not 8 <= len(password) <= 63:
        errors["password"] = ["WPA passwords have 8-63 characters."]
    elif security == "open" and password:
        errors["password"] = ["An open network has no password."]
    hidden = params.get("hidden", False)
    if not isinstance(hidden, bool):
        errors["hidden"] = ["Must be true or false."]
    return {"ssid": ssid, "security": security, "password": password, "hidden": hidden}


VALIDATORS = {
    CommandType.PING: _no_params,
    CommandType.REBOOT: _no_params,
    CommandType.LOCK: _no_params,
    CommandType.LAUNCH_APP: _launch_app,
    CommandType.UNINSTALL_APP: _package_only,
    CommandType.CLEAR_APP_DATA: _package_only,
    CommandType.SHELL: _shell,
    CommandType.INSTALL_APK: _install_apk,
    CommandType.WIFI_CONFIGURE: _wifi,
}


def validate(command_type: str, params) -> dict:
    """Cleaned params for the type, or ParamsError. Unknown params are dropped."""
    if command_type not in VALIDATORS:
        raise ParamsError({"type": [f"Unknown command type {command_type!r}; one of {', '.join(VALIDATORS)}."]})
    params = _require_obj(params)
    errors: dict = {}
    cleaned = VALIDATORS[command_type](params, errors)
    if errors:
        raise ParamsError({k: v for k, v in errors.items()})
    return cleaned
