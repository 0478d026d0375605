"""Console forms: turning the composer's and the settings pages' POSTs into service arguments."""

import json
import math
import re
import uuid

from django import forms

from commands.models import CommandType, Preset, WifiConfig
from commands.params import ParamsError
from devices.filters import DeviceFilter
from devices.models import DeviceGroup
from mdm.formfields import ServiceErrorsMixin

TARGET_KINDS = [("all", "All devices"), ("group", "A group"), ("tags", "Tags"),
                ("device_ids", "Devices by hardware id or name"), ("filter", "A filter")]
# Every filter of the devices list (the list hands its filter to the composer: "send a command to
# all that match"), sort aside.
FILTER_FIELDS = tuple(name for name in DeviceFilter.base_filters if name != "sort")
SHOWN_FILTER_FIELDS = ("q", "status", "battery_below", "android_version")  # the rest arrive from the list


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").replace(",", "\n").splitlines() if line.strip()]


def params_from_post(command_type: str, post) -> dict:
    if command_type == CommandType.SHELL:
        raw = post.get("argv", "")
        # One argument per line keeps arguments with spaces intact; a single line is split on spaces.
        lines = [line for line in raw.splitlines() if line.strip()]
        argv = lines if len(lines) > 1 else raw.split()
        return {"argv": argv}
    if command_type == CommandType.LAUNCH_APP:
        return {k: post.get(k, "").strip() for k in ("package", "activity") if post.get(k, "").strip()}
    if command_type in (CommandType.UNINSTALL_APP, CommandType.CLEAR_APP_DATA):
        return {"package": post.get("package", "").strip()}
    if command_type == CommandType.WIFI_CONFIGURE:
        return {"ssid": post.get("ssid", ""), "security": post.get("security", "wpa2"),
                "password": post.get("password", ""), "hidden": post.get("hidden") == "on"}
    if command_type == CommandType.INSTALL_APK:
        return {"apk_id": post.get("apk_id", "")}
    return {}


def target_from_post(post) -> dict:
    kind = post.get("target_kind", "all")
    if kind == "group":
        return {"group": post.get("group", "")}
    if kind == "tags":
        return {"tags": post.getlist("tags")}
    if kind == "device_ids":
        return {"device_ids": _lines(post.get("device_ids", ""))}
    if kind == "filter":
        return {"filter": {f: post.get(f"filter_{f}") for f in FILTER_FIELDS if post.get(f"filter_{f}", "").strip()}}
    return {"all": True}


def target_prefill(query) -> dict:
    """The target fields filled in from the composer's query string, as the devices list links to
    it: `target_kind`, `device_ids` (hardware ids, one per line), `group`, `tags`, `filter_<name>`."""
    kind = query.get("target_kind", "")
    filters = {f: query.get(f"filter_{f}") for f in FILTER_FIELDS if query.get(f"filter_{f}", "").strip()}
    extra = [(f, DeviceFilter.base_filters[f].label or f, v) for f, v in filters.items() if f not in SHOWN_FILTER_FIELDS]
    return {"kind": kind if kind in dict(TARGET_KINDS) else "", "device_ids": query.get("device_ids", ""),
            "group": query.get("group", ""), "tags": query.getlist("tags"), "filter": filters, "extra_filters": extra}


QUICK_TYPES = {"reboot": CommandType.REBOOT, "lock": CommandType.LOCK}


def quick_action(post, *, kiosk: dict | None) -> dict:
    """A device page's quick action as services.issue_command arguments (the target aside):
    `action` reboot, lock, kiosk (launch the kiosk app of the device's policy) or preset."""
    action = post.get("action", "")
    if action in QUICK_TYPES:
        return {"type": QUICK_TYPES[action], "params": {}}
    if action == "kiosk":
        if not kiosk:
            raise ParamsError({"Relaunch kiosk": ["This device's policy has no kiosk app."]})
        return {"type": CommandType.LAUNCH_APP, "params": {k: kiosk[k] for k in ("package", "activity") if kiosk.get(k)}}
    if action == "preset":
        try:
            preset = Preset.objects.filter(pk=uuid.UUID(post.get("preset", "")), is_latest=True, archived=False).first()
        except ValueError:
            preset = None
        if preset is None:
            raise ParamsError({"Preset": ["Choose a preset."]})
        return {"preset": preset, "params": {}}
    raise ParamsError({"Action": ["Choose reboot, lock, relaunch kiosk or a preset."]})


MAX_EXPIRES_IN_MIN = 43_200  # 30 days, the protocol's maximum (services.MAX_EXPIRES_IN_S)


def _expiry_seconds(raw: str) -> int:
    """The composer's "expires after (minutes)" as seconds. float() alone let `1e309` (inf)
    and `nan` through to int(), a 500; the answer is in minutes, as the field is."""
    message = f"Minutes, a number from 1 to {MAX_EXPIRES_IN_MIN:,} (30 days)."
    try:
        minutes = float(raw)
    except ValueError:
        raise ParamsError({"Expires after": [message]}) from None
    if not math.isfinite(minutes) or not 1 <= minutes <= MAX_EXPIRES_IN_MIN:
        raise ParamsError({"Expires after": [message]})
    return round(minutes * 60)


def composer_request(post) -> dict:
    """Keyword arguments for services.preview_command / issue_command, or ParamsError."""
    preset = None
    if post.get("source") == "preset":
        preset = Preset.objects.filter(pk=post.get("preset") or None, archived=False).first() if post.get("preset") else None
        if preset is None:
            raise ParamsError({"preset": ["Choose a preset."]})
        command_type, params = preset.type, {}
    else:
        command_type = post.get("type", "")
        params = params_from_post(command_type, post)
    expires_in_s = None
    raw = post.get("expires_in_min", "").strip()
    if raw:
        expires_in_s = _expiry_seconds(raw)
    return {"type": command_type, "params": params, "target": target_from_post(post), "expires_in_s": expires_in_s,
            "preset": preset}


class PresetForm(ServiceErrorsMixin, forms.Form):
    default_field = "params"  # what the type's params check says (argv, package, ...) is about the params

    name = forms.CharField(max_length=100)
    type = forms.ChoiceField(choices=[c for c in CommandType.choices if c[0] not in ("wifi_configure", "install_apk")])
    params = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, initial="{}",
                             help_text='JSON, e.g. {"argv": ["getprop", "ro.build.version.security_patch"]} or {"package": "com.example.app"}.')
    description = forms.CharField(max_length=300, required=False)
    category = forms.CharField(max_length=50, required=False)

    def clean_params(self):
        try:
            value = json.loads(self.cleaned_data["params"] or "{}")
        except ValueError:
            raise forms.ValidationError("Not valid JSON.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A JSON object.")
        return value


class AllowRuleForm(ServiceErrorsMixin, forms.Form):
    argv_prefix = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Command prefix",
                                  help_text="One argument per line (or a single line split on spaces).")
    description = forms.CharField(max_length=200, required=False)
    enabled = forms.BooleanField(required=False, initial=True)

    def clean_argv_prefix(self):
        raw = self.cleaned_data["argv_prefix"]
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        return lines if len(lines) > 1 else raw.split()


class WifiForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=100)
    ssid = forms.CharField(max_length=32, label="SSID")
    security = forms.ChoiceField(choices=WifiConfig.Security.choices, initial="wpa2")
    password = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False, max_length=63,
                               help_text="Stored encrypted; leave empty to keep the current one.")
    hidden = forms.BooleanField(required=False)
    group = forms.ModelChoiceField(queryset=DeviceGroup.objects.all(), required=False, empty_label="Every device",
                                   to_field_name="name")


# What the console calls the fields a ParamsError names (the API's answers keep the names).
LABELS = {
    "package": "Package", "activity": "Activity", "argv": "Command line", "argv_prefix": "Allowed prefix",
    "ssid": "SSID", "security": "Security", "password": "Password", "hidden": "Hidden network",
    "apk_id": "APK release", "preset": "Preset", "name": "Name", "group": "Group", "version_code": "Version code",
    "sha256": "SHA-256", "size": "Size (bytes)",
}
# Messages that stand alone: about the whole request, its target or the retry.
UNLABELLED = frozenset({"target", "params", "type", "retry", "__all__"})
FILTER_LABELS = {"q": "Search", "status": "Status", "battery_below": "Battery below %", "battery_above": "Battery above %",
                 "android_version": "Android version", "group": "Group", "tag": "Tag"}
EXPIRY_MESSAGE = f"Minutes, a number from 1 to {MAX_EXPIRES_IN_MIN:,} (30 days)."
_FILTER_FIELD = re.compile(r"filter\.(\w+): (.*)", re.S)


def user_message(name: str, message: str) -> str:
    """One ParamsError message in the console's terms: the field's label, not its code, and the
    lifetime in minutes, as the composer asks for it."""
    if name == "expires_in_s":
        return f"Expires after: {EXPIRY_MESSAGE}"
    nested = _FILTER_FIELD.fullmatch(message)
    if nested:
        return f"{FILTER_LABELS.get(nested[1], nested[1].replace('_', ' ').capitalize())}: {nested[2]}"
    if name in UNLABELLED:
        return message
    return f"{LABELS.get(name) or name.replace('_', ' ').capitalize()}: {message}"


def _messages(exc: ParamsError):
    for name, messages in exc.errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            yield name, str(message)


def params_errors(exc: ParamsError) -> list[str]:
    """The messages of a ParamsError for a page, each once."""
    out: list[str] = []
    for name, message in _messages(exc):
        text = user_message(name, message)
        if text not in out:
            out.append(text)
    return out
