from django.contrib import admin

from mdm.forms import FleetSettingsForm
from mdm.models import AuditEvent, FleetSettings


class ReadOnlyAdmin(admin.ModelAdmin):
    """For what changes only through the services (console, API, devices), which audit it: the
    admin is for looking."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_label", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "action", "target_id")
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FleetSettings)
class FleetSettingsAdmin(admin.ModelAdmin):
    # The console's form: its range checks (heartbeat 10-3600 s, ...) hold here too, where the
    # model's own fields took any positive integer.
    form = FleetSettingsForm
    list_display = ("__str__", "heartbeat_interval_s", "offline_threshold_s", "history_retention_days", "reenroll_policy")

    def has_add_permission(self, request):
        return not FleetSettings.objects.exists()

    def save_model(self, request, obj, form, change):
        from mdm.services import update_fleet_settings
        from mdm.audit import client_ip

        update_fleet_settings(actor=request.user, ip=client_ip(request), **form.changed_settings())

    def has_delete_permission(self, request, obj=None):
        return False
