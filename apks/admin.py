"""Read-only admin views of this app: releases, uploads and rollouts change only through the
services (console, API, tus, the rollout beat), which audit them."""

from django.contrib import admin

from apks.models import Release, Rollout, RolloutDevice, RolloutWave, Upload
from mdm.admin import ReadOnlyAdmin


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ["package", "version_code", "version_name", "channel", "signer_sha256", "uploaded_by_label", "created_at", "agent"]
    list_filter = ["channel", "uploaded_via"]
    search_fields = ["package", "version_name", "sha256"]


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "offset", "length", "created_by_label", "created_at", "expires_at"]
    list_filter = ["state"]


class WaveInline(admin.TabularInline):
    model = RolloutWave
    fields = ["index", "label", "state", "started_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = ["id", "release", "state", "current_wave", "created_by_label", "created_at", "finished_at"]
    list_filter = ["state"]
    inlines = [WaveInline]


@admin.register(RolloutDevice)
class RolloutDeviceAdmin(ReadOnlyAdmin):
    list_display = ["rollout", "device", "wave", "delivery", "skipped"]
    list_select_related = ["device"]
    raw_id_fields = ["rollout", "device", "delivery"]


@admin.register(RolloutWave)
class RolloutWaveAdmin(ReadOnlyAdmin):
    list_display = ["rollout", "index", "label", "state", "started_at", "finished_at"]
    list_filter = ["state"]
