from django.urls import path

from mdm.alerts.views import alerts, rules, setup

app_name = "alerts"

urlpatterns = [
    path("", alerts.index, name="index"),
    path("count/", alerts.open_count, name="count"),
    path("<uuid:alert_id>/", alerts.detail, name="detail"),
    path("<uuid:alert_id>/acknowledge/", alerts.acknowledge, name="acknowledge"),
    path("<uuid:alert_id>/snooze/", alerts.snooze, name="snooze"),
    path("device/<uuid:device_id>/", alerts.device_alerts, name="device_alerts"),
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_new, name="rule_new"),
    path("rules/<uuid:rule_id>/", rules.rule_edit, name="rule"),
    path("rules/<uuid:rule_id>/enabled/", rules.rule_enabled, name="rule_enabled"),
    path("rules/<uuid:rule_id>/delete/", rules.rule_delete, name="rule_delete"),
    path("webhooks/", setup.webhooks, name="webhooks"),
    path("webhooks/<uuid:hook_id>/", setup.webhook_detail, name="webhook"),
    path("webhooks/<uuid:hook_id>/test/", setup.webhook_test, name="webhook_test"),
    path("webhooks/<uuid:hook_id>/delete/", setup.webhook_delete, name="webhook_delete"),
    path("maintenance/", setup.maintenance, name="maintenance"),
    path("maintenance/<uuid:window_id>/delete/", setup.window_delete, name="window_delete"),
    path("preferences/", setup.preferences, name="preferences"),
]
