from django import forms

from mdm.models import FleetSettings


# What each re-enrollment policy lets in, in the admin's words (PROTOCOL.md v1.1 rule 3: "the
# console says what it allows").
REENROLL_HELP = (
    "When a device that is already enrolled enrolls again (after a factory reset, say), it gets a new token "
    "and this device's commands. “Needs the device's token or an admin's approval” (recommended): the device "
    "must present its current token, or it waits under Re-enrollment requests until an admin approves that "
    "request. “Allowed with any enrollment key”: anyone who holds an enrollment key and knows a device's "
    "serial number can take that device over without anyone noticing: they receive its commands, Wi-Fi "
    "passwords included, and the real device is cut off."
)


HEARTBEAT_RANGE = "Between 10 and 3600 seconds."
OFFLINE_RANGE = "Between 10 seconds and 7 days (604,800 seconds)."
HISTORY_RANGE = "Between 1 and 3650 days."
AUDIT_RETENTION_RANGE = "Between 30 and 3650 days."
EXPIRY_MAX_MIN = 43_200  # 30 days, the protocol's longest command lifetime (commands.services.MAX_EXPIRES_IN_S)
EXPIRY_RANGE = f"Between 1 minute and 30 days ({EXPIRY_MAX_MIN:,} minutes)."


def _range(message: str) -> dict:
    """Every complaint a whole-number field can make, as its range in the field's unit."""
    return {"invalid": message, "min_value": message, "max_value": message}


class FleetSettingsForm(forms.ModelForm):
    """The settings drawer (and the Django admin's change form). The default command expiry is in
    minutes here, as in the command composer; the model keeps seconds."""

    default_command_expiry_min = forms.IntegerField(
        label="Default command expiry (minutes)", min_value=1, max_value=EXPIRY_MAX_MIN, error_messages=_range(EXPIRY_RANGE),
        help_text="Commands expire after this long unless the issuer says otherwise.")

    class Meta:
        model = FleetSettings
        fields = [
            "heartbeat_interval_s",
            "offline_after_s",
            "history_retention_days",
            "reenroll_policy",
            "audit_retention_days",
        ]
        labels = {
            "heartbeat_interval_s": "Heartbeat interval (seconds)",
            "offline_after_s": "Offline after (seconds)",
            "history_retention_days": "History retention (days)",
            "audit_retention_days": "Audit log retention (days)",
        }
        help_texts = {"reenroll_policy": REENROLL_HELP}
        error_messages = {
            "heartbeat_interval_s": _range(HEARTBEAT_RANGE),
            "offline_after_s": _range(OFFLINE_RANGE),
            "history_retention_days": _range(HISTORY_RANGE),
            "audit_retention_days": _range(AUDIT_RETENTION_RANGE),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_command_expiry_min"].initial = max(1, round(self.instance.default_command_expiry_s / 60))
        self.order_fields(["heartbeat_interval_s", "offline_after_s", "history_retention_days", "default_command_expiry_min"])

    def clean_heartbeat_interval_s(self):
        return _within(self.cleaned_data["heartbeat_interval_s"], 10, 3600, HEARTBEAT_RANGE)

    def clean_offline_after_s(self):
        value = self.cleaned_data["offline_after_s"]
        return value if value is None else _within(value, 10, 7 * 86400, OFFLINE_RANGE)

    def clean_history_retention_days(self):
        return _within(self.cleaned_data["history_retention_days"], 1, 3650, HISTORY_RANGE)

    def clean_audit_retention_days(self):
        return _within(self.cleaned_data["audit_retention_days"], 30, 3650, AUDIT_RETENTION_RANGE)

    def clean(self):
        data = super().clean()
        offline, interval = data.get("offline_after_s"), data.get("heartbeat_interval_s")
        if offline is not None and interval and offline < interval:
            self.add_error("offline_after_s", "Must be at least one heartbeat interval.")
        return data

    def _post_clean(self):
        super()._post_clean()
        minutes = self.cleaned_data.get("default_command_expiry_min")
        if minutes is not None and "default_command_expiry_min" in self.changed_data:
            self.instance.default_command_expiry_s = minutes * 60

    def changed_settings(self) -> dict:
        """The settings this form changes, by their names in FleetSettings (and the service):
        the expiry in seconds, and only when its minutes changed, so a value set in seconds
        elsewhere (90 s shows as 2 minutes) is not rounded by saving something else."""
        values = {}
        for name in self.changed_data:
            if name == "default_command_expiry_min":
                values["default_command_expiry_s"] = self.cleaned_data[name] * 60
            else:
                values[name] = self.cleaned_data[name]
        return values


def _within(value: int, low: int, high: int, message: str) -> int:
    if not low <= value <= high:
        raise forms.ValidationError(message)
    return value
