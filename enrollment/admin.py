from django.contrib import admin

from enrollment.models import BloatwarePreset, EnrollmentKey, TweakPreset


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
