from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from mdm import ops_api, views

api_v1 = [
    # With and without the trailing slash, as the routers' routes (one path in the schema).
    re_path(r"^dead-letters/?$", ops_api.DeadLetterList.as_view(), name="api-dead-letters"),
    re_path(r"^dead-letters/purge/?$", ops_api.DeadLetterPurge.as_view(), name="api-dead-letters-purge"),
    re_path(r"^audit/?$", ops_api.AuditEventList.as_view(), name="api-audit"),
    path("", include("accounts.api.urls")),
    path("", include("enrollment.api.urls")),
    path("", include("devices.api.urls")),
    path("", include("commands.api.urls")),
    path("", include("apks.api.urls")),
    path("", include("mdm.alerts.api")),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("settings/", views.fleet_settings, name="fleet-settings"),
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/export.csv", views.audit_export, name="audit-export"),
    path("ops/", views.operations, name="operations"),
    path("ops/dead-letters/purge", views.purge_dead_letters, name="dead-letters-purge"),
    path("accounts/", include("accounts.urls")),
    path("devices/", include("devices.urls")),
    path("enrollment/", include("enrollment.urls")),
    path("commands/", include("commands.urls")),
    path("apks/", include("apks.urls")),
    path("alerts/", include("mdm.alerts.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", views.api_docs, name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="prometheus-django-metrics"),
    path("admin/", admin.site.urls),
]

if settings.BENCH_NAIVE_VIEW:  # the settings make sure the dev tools are installed then
    urlpatterns.append(path("bench/", include("loadtest.urls")))

handler400 = "mdm.errors.bad_request"
handler403 = "mdm.errors.permission_denied"
handler404 = "mdm.errors.page_not_found"
handler500 = "mdm.errors.server_error"
