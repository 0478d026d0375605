"""Read-only admin views of this app: releases and uploads change only through the services
(console, API, tus), which audit them."""

from django.contrib import admin

from apks.models import Release, Upload


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(ReadOnly):
    list_display = ["package", "version_code", "version_name", "channel", "signer_sha256", "uploaded_by_label", "created_at", "agent"]
    list_filter = ["channel", "uploaded_via"]
    search_fields = ["package", "version_name", "sha256"]


@admin.register(Upload)
class UploadAdmin(ReadOnly):
    list_display = ["id", "state", "offset", "length", "created_by_label", "created_at", "expires_at"]
    list_filter = ["state"]
