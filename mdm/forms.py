from django import forms

from mdm.models import FleetSettings


class FleetSettingsForm(forms.ModelForm):
    class Meta:
        model = FleetSettings
        fields = [
            "heartbeat_interval_s",
            "offline_after_s",
            "history_retention_days",
            "default_command_expiry_s",
            "reenroll_policy",
        ]

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
