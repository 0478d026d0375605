from django.contrib import admin

from enrollment.models import BloatwarePreset, EnrollmentKey, ReenrollRequest, TweakPreset


@admin.register(EnrollmentKey)
class EnrollmentKeyAdmin(admin.ModelAdmin):
    """Keys are created through the console, API or manage.py (the raw key is shown once there);
    here superusers can look and search, not mint or edit hashes."""

    list_display = ("name", "prefix", "uses", "max_uses", "expires_at", "revoked_at", "group", "created_by", "created_at")
    list_filter = ("group",)
    search_fields = ("name", "prefix")
    readonly_fields = [f.name for f in EnrollmentKey._meta.fields]
    list_select_related = ("group", "created_by")

    def has_add_permission(self, request):
        return False


@admin.register(BloatwarePreset)
class BloatwarePresetAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "updated_at")
    search_fields = ("name",)


@admin.register(TweakPreset)
class TweakPresetAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "updated_at")
    search_fields = ("name",)


@admin.register(ReenrollRequest)
class ReenrollRequestAdmin(admin.ModelAdmin):
    """Looked at here; decided in the console or the API (audited, and bound to the protocol's
    states), so nothing is editable."""

    list_display = ("device", "state", "source_ip", "key_name", "model", "created_at", "decided_by", "decided_at", "used_at")
    list_filter = ("state",)
    search_fields = ("device__hardware_id", "key_name", "source_ip")
    readonly_fields = [f.name for f in ReenrollRequest._meta.fields]
    list_select_related = ("device", "decided_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
