"""Console forms: turning the composer's and the settings pages' POSTs into service arguments."""

import json
import math

from django import forms

from commands.models import CommandType, Preset, WifiConfig
from commands.params import ParamsError
from devices.models import DeviceGroup
from mdm.formfields import ServiceErrorsMixin

TARGET_KINDS = [("all", "All devices"), ("group", "A group"), ("tags", "Tags"), ("device_ids", "Devices by id"),
                ("filter", "A filter")]
FILTER_FIELDS = ("q", "status", "battery_below", "battery_above", "android_version", "group", "tag")


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


def params_errors(exc: ParamsError) -> list[str]:
    out = []
    for name, messages in exc.errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            out.append(f"{name}: {message}")
    return out
