"""Read-only admin views of this app. Changes go through the console or the API, where the
services audit them; the admin is for looking. Key material and secrets are never shown."""

from django.contrib import admin

from commands.models import Command, Delivery, DeviceKey, Policy, PolicyAssignment, PolicyVersion, Preset, ShellAllowRule, WifiConfig
from commands.policies.items import masked
from mdm.admin import ReadOnlyAdmin


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ["id", "type", "target_count", "issuer_label", "created_at", "expires_at", "cancelled_at"]
    list_filter = ["type"]
    search_fields = ["id", "issuer_label"]
    exclude = ["secret_params", "params"]
    readonly_fields = ["masked_params"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["command_id", "device_id", "seq", "state", "channel", "push_status", "attempts", "finished_at"]
    list_filter = ["state", "channel", "push_status"]
    raw_id_fields = ["command", "device"]


@admin.register(DeviceKey)
class DeviceKeyAdmin(ReadOnlyAdmin):
    list_display = ["device_id", "kid", "state", "created_at", "activates_at", "retired_at"]
    list_filter = ["state"]
    exclude = ["key_encrypted"]
    raw_id_fields = ["device"]


@admin.register(ShellAllowRule)
class ShellAllowRuleAdmin(ReadOnlyAdmin):
    list_display = ["label", "description", "enabled", "updated_at"]


@admin.register(Preset)
class PresetAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "type", "is_latest", "archived", "created_at"]
    list_filter = ["type", "is_latest", "archived"]


@admin.register(WifiConfig)
class WifiConfigAdmin(ReadOnlyAdmin):
    list_display = ["name", "ssid", "security", "hidden", "group", "last_pushed_at"]
    exclude = ["password_encrypted"]


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "updated_at"]
    search_fields = ["name"]
    raw_id_fields = ["current"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["id", "policy", "created_by", "created_at"]
    exclude = ["secret", "items"]  # items shown masked: Wi-Fi passwords live only in `secret`
    readonly_fields = ["masked_items"]
    raw_id_fields = ["policy"]

    @admin.display(description="items")
    def masked_items(self, obj):
        return masked(obj.items)


@admin.register(PolicyAssignment)
class PolicyAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["policy", "device", "group", "fleet_default", "created_at"]
    list_filter = ["fleet_default"]
    raw_id_fields = ["policy", "device", "group"]
