from django.contrib import admin

from devices.models import Device, DeviceGroup, DevicePolicyState, DeviceStatus, FleetSample, FlushClaim, InstalledApp, Tag
from mdm.admin import ReadOnlyAdmin


@admin.register(DeviceGroup)
class DeviceGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "created_at")
    search_fields = ("name",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class StatusInline(admin.StackedInline):
    model = DeviceStatus
    can_delete = False
    extra = 0


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """Read-only: deleting or editing a device must go through devices.services (token revocation,
    retirement, purge, audit), which the console and the API call."""

    list_display = ("hardware_id", "alias", "model", "group", "android_version", "enrolled_at", "deleted_at")
    list_filter = ("group", "manufacturer", "deleted_at")
    search_fields = ("hardware_id", "serial", "alias", "model")
    inlines = [StatusInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Device._meta.fields] + ["tags"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DeviceStatus)
class DeviceStatusAdmin(admin.ModelAdmin):
    """Written by heartbeats only: read-only here."""

    list_display = ("device", "online", "last_seen", "battery_pct", "network_type", "foreground_app", "bad_envelopes_total")
    list_filter = ("online", "network_type")
    search_fields = ("device__hardware_id", "device__alias")
    list_select_related = ("device",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InstalledApp)
class InstalledAppAdmin(admin.ModelAdmin):
    list_display = ("package", "version_name", "version_code", "device", "system", "enabled")
    search_fields = ("package",)
    list_select_related = ("device",)


@admin.register(FlushClaim)
class FlushClaimAdmin(ReadOnlyAdmin):
    """Read-only: the heartbeat flush's ledger (devices.writebehind), kept a week."""

    list_display = ("claim", "state", "at")
    list_filter = ("state",)


@admin.register(DevicePolicyState)
class DevicePolicyStateAdmin(ReadOnlyAdmin):
    """Read-only: written by the policy channel's services and the devices' reports."""

    list_display = ("device", "policy_id", "version", "applied_version", "all_applied", "reported_at")
    raw_id_fields = ("device",)


@admin.register(FleetSample)
class FleetSampleAdmin(ReadOnlyAdmin):
    """Read-only: the dashboard's online count over time, one row per 5 minutes (devices.fleet_stats)."""

    list_display = ("at", "online", "total")
    date_hierarchy = "at"
