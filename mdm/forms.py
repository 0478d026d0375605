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


AUDIT_RETENTION_RANGE = "Between 30 and 3650 days."


class FleetSettingsForm(forms.ModelForm):
    class Meta:
        model = FleetSettings
        fields = [
            "heartbeat_interval_s",
            "offline_after_s",
            "history_retention_days",
            "default_command_expiry_s",
            "reenroll_policy",
            "audit_retention_days",
        ]
        help_texts = {"reenroll_policy": REENROLL_HELP}
        error_messages = {"audit_retention_days": {"min_value": AUDIT_RETENTION_RANGE, "max_value": AUDIT_RETENTION_RANGE}}

    def clean_heartbeat_interval_s(self):
        value = self.cleaned_data["heartbeat_interval_s"]
        if not 10 <= value <= 3600:
            raise forms.ValidationError("Between 10 and 3600 seconds.")
        return value

    def clean_history_retention_days(self):
        value = self.cleaned_data["history_retention_days"]
        if not 1 <= value <= 3650:
            raise forms.ValidationError("Between 1 and 3650 days.")
        return value

    def clean_audit_retention_days(self):
        value = self.cleaned_data["audit_retention_days"]
        if not 30 <= value <= 3650:
            raise forms.ValidationError(AUDIT_RETENTION_RANGE)
        return value

    def clean_default_command_expiry_s(self):
        value = self.cleaned_data["default_command_expiry_s"]
        if not 60 <= value <= 2_592_000:
            raise forms.ValidationError("Between 60 seconds and 30 days.")
        return value

    def clean(self):
        data = super().clean()
        offline, interval = data.get("offline_after_s"), data.get("heartbeat_interval_s")
        if offline is not None and interval and offline < interval:
            self.add_error("offline_after_s", "Must be at least one heartbeat interval.")
        return data
