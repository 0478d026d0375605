from django.urls import path

from enrollment import script_views, views

app_name = "enrollment"

urlpatterns = [
    path("", views.index, name="index"),
    path("keys/", views.create_key, name="create_key"),
    path("keys/<uuid:key_id>/revoke/", views.revoke_key, name="revoke_key"),
    path("keys/info/<str:form>/", views.key_info, name="key_info"),
    path("qr/", views.build_qr, name="build_qr"),
    path("one-liner/", views.build_oneliner, name="build_oneliner"),
    path("provision.sh", script_views.provision_script, {"shell": "bash"}, name="provision_sh"),
    path("provision.ps1", script_views.provision_script, {"shell": "powershell"}, name="provision_ps1"),
    path("provision.status", script_views.provision_status, name="provision_status"),
    path("presets/<str:kind>/new/", views.preset_edit, name="preset_new"),
    path("presets/<str:kind>/<int:preset_id>/", views.preset_edit, name="preset_edit"),
    path("presets/<str:kind>/<int:preset_id>/delete/", views.preset_delete, name="preset_delete"),
    path("reenroll-requests/", views.reenroll_requests, name="reenroll_requests"),
    path("reenroll-requests/count/", views.reenroll_count, name="reenroll_count"),
    path("reenroll-requests/<uuid:request_id>/approve/", views.approve_reenroll, name="approve_reenroll"),
    path("reenroll-requests/<uuid:request_id>/deny/", views.deny_reenroll, name="deny_reenroll"),
]
