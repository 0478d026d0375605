from django.urls import path

from commands import device_views, views
from commands.policies import views as policy_views

app_name = "commands"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.compose, name="compose"),
    path("new/params/", views.params_form, name="params_form"),
    path("new/preview/", views.preview, name="preview"),
    path("new/issue/", views.issue, name="issue"),
    path("presets/", views.presets, name="presets"),
    path("presets/<uuid:preset_id>/archive/", views.preset_archive, name="preset_archive"),
    path("allowlist/", views.allowlist, name="allowlist"),
    path("allowlist/<uuid:rule_id>/toggle/", views.allow_rule_toggle, name="allow_rule_toggle"),
    path("allowlist/<uuid:rule_id>/delete/", views.allow_rule_delete, name="allow_rule_delete"),
    path("wifi/", views.wifi, name="wifi"),
    path("wifi/<uuid:config_id>/push/", views.wifi_push, name="wifi_push"),
    path("policies/", policy_views.policy_list, name="policies"),
    path("policies/new/", policy_views.policy_new, name="policy_new"),
    path("policies/<uuid:policy_id>/", policy_views.policy_detail, name="policy_detail"),
    path("policies/<uuid:policy_id>/edit/", policy_views.policy_edit, name="policy_edit"),
    path("policies/<uuid:policy_id>/diff/", policy_views.policy_diff, name="policy_diff"),
    path("policies/<uuid:policy_id>/assign/", policy_views.policy_assign, name="policy_assign"),
    path("policies/<uuid:policy_id>/unassign/", policy_views.policy_unassign, name="policy_unassign"),
    path("device/<uuid:device_id>/", device_views.device_commands, name="device_commands"),
    path("device/<uuid:device_id>/quick/", device_views.device_quick_action, name="device_quick_action"),
    path("<uuid:command_id>/", views.detail, name="detail"),
    path("<uuid:command_id>/cancel/", views.cancel, name="cancel"),
    path("<uuid:command_id>/actions/", views.actions, name="actions"),
    path("<uuid:command_id>/retry/", views.retry, name="retry"),
]
