from django.contrib import admin

from devices.models import Device, DeviceGroup, DeviceStatus, InstalledApp, Tag


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
    list_display = ("hardware_id", "alias", "model", "group", "android_version", "enrolled_at", "deleted_at")
    list_filter = ("group", "manufacturer", "deleted_at")
    search_fields = ("hardware_id", "serial", "alias", "model")
    readonly_fields = ("id", "token_id", "token_hash", "token_issued_at", "token_used_at", "next_seq")
    inlines = [StatusInline]


@admin.register(InstalledApp)
class InstalledAppAdmin(admin.ModelAdmin):
    list_display = ("package", "version_name", "version_code", "device", "system", "enabled")
    search_fields = ("package",)
    list_select_related = ("device",)
