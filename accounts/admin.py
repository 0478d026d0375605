from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts import services
from accounts.models import ApiKey, User
from mdm.admin import ReadOnlyAdmin
from mdm.audit import client_ip


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Django's user admin, with the account changes that end sessions, tokens and sockets (active,
    role, password) going through accounts.services like the console's."""

    list_display = ("username", "email", "role", "is_active", "approved_at", "is_superuser", "last_login")
    list_filter = ("role", "is_active", "is_superuser")
    fieldsets = BaseUserAdmin.fieldsets + (("MDM", {"fields": ("role", "approved_at", "credential_version")}),)
    readonly_fields = ("approved_at", "credential_version")

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        before = User.objects.get(pk=obj.pk)
        wanted_active, wanted_role = obj.is_active, obj.role
        obj.is_active, obj.role = before.is_active, before.role
        super().save_model(request, obj, form, change)
        ip = client_ip(request)
        try:
            if before.is_pending and wanted_active:
                services.approve_user(actor=request.user, user=obj, role=wanted_role, ip=ip)
                return
            if wanted_role != before.role:
                services.set_role(actor=request.user, user=obj, role=wanted_role, ip=ip)
            if wanted_active != before.is_active:
                services.set_active(actor=request.user, user=obj, active=wanted_active, ip=ip)
        except services.AccountStateError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            services.record_password_change(user=user, how="admin_set", actor=request.user, ip=client_ip(request))
        return response


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Read-only: keys are made and revoked in the console or the API (audited); never the hash."""

    list_display = ["name", "prefix", "scopes", "created_at", "last_used_at", "expires_at", "revoked_at"]
    exclude = ["key_hash"]
