"""/api/v1/maintenance-windows (operators write, everyone reads), /api/v1/me/alert-preferences
(each user their own), and every alerting endpoint in the OpenAPI schema."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.tests.factories import DeviceGroupFactory
from mdm.alerts.models import AlertRule, MaintenanceWindow, NotificationPreference
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

WINDOWS = "/api/v1/maintenance-windows"
PREFS = "/api/v1/me/alert-preferences"


def test_an_operator_opens_a_window_for_a_group_by_duration(operator_api, viewer_api):
    DeviceGroupFactory(name="Lobby")
    response = operator_api.post(WINDOWS, {"group": "Lobby", "duration_minutes": 90, "reason": "re-cabling"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["group"] == "Lobby" and body["active"] is True and body["created_by"] == "oscar-operator"
    w = MaintenanceWindow.objects.get()
    assert timedelta(minutes=89) < w.ends_at - timezone.now() <= timedelta(minutes=90)
    listed = viewer_api.get(WINDOWS).json()
    assert listed["count"] == 1 and listed["results"][0]["reason"] == "re-cabling"
    assert AuditEvent.objects.filter(action="maintenance_window.create").exists()


def test_a_window_for_the_whole_fleet_with_start_and_end(operator_api):
    start = timezone.now() + timedelta(hours=1)
    response = operator_api.post(WINDOWS, {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()},
                                 format="json")
    assert response.status_code == 201 and response.json()["group"] is None and response.json()["active"] is False


@pytest.mark.parametrize("body, field", [
    ({"group": "Nowhere", "duration_minutes": 5}, "group"),
    ({}, "ends_at"),
    ({"duration_minutes": 5, "ends_at": "2099-01-01T00:00:00Z"}, "ends_at"),
    ({"duration_minutes": 0}, "duration_minutes"),
    ({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"}, "ends_at"),
    ({"starts_at": "2099-01-02T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}, "ends_at"),
    ({"ends_at": "2099-01-01T00:00:00Z"}, "ends_at"),  # more than 90 days from now
    ({"duration_minutes": 5, "reason": "x" * 201}, "reason"),
    ({"duration_minutes": 5, "starts_at": "yesterday-ish"}, "starts_at"),
])
def test_bad_windows_are_refused_naming_the_field(operator_api, body, field):
    response = operator_api.post(WINDOWS, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


def test_an_operator_ends_a_window_and_a_viewer_cannot(operator_api, viewer_api, anon_api, operator_user):
    w = MaintenanceWindow.objects.create(starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1), created_by=operator_user)
    assert anon_api.get(WINDOWS).status_code == 401
    assert viewer_api.post(WINDOWS, {"duration_minutes": 5}, format="json").status_code == 403
    assert viewer_api.delete(f"{WINDOWS}/{w.pk}").status_code == 403
    assert operator_api.delete(f"{WINDOWS}/{w.pk}").status_code == 204
    assert not MaintenanceWindow.objects.exists()
    assert AuditEvent.objects.filter(action="maintenance_window.delete").exists()


def test_preferences_default_until_set_and_belong_to_their_user(viewer_api, operator_api, viewer_user):
    assert viewer_api.get(PREFS).json() == {"email_enabled": True, "min_severity": "info", "muted_rules": []}
    rule = AlertRule.objects.get(seed_key="clock_drift")
    response = viewer_api.put(PREFS, {"email_enabled": True, "min_severity": "critical", "muted_rules": [str(rule.pk)]},
                              format="json")
    assert response.status_code == 200
    assert response.json() == {"email_enabled": True, "min_severity": "critical", "muted_rules": [str(rule.pk)]}
    pref = NotificationPreference.objects.get(user=viewer_user)
    assert pref.min_severity == "critical" and list(pref.muted_rules.all()) == [rule]
    assert viewer_api.patch(PREFS, {"email_enabled": False}, format="json").json()["muted_rules"] == [str(rule.pk)]
    assert operator_api.get(PREFS).json()["min_severity"] == "info"  # someone else's are their own
    assert AuditEvent.objects.filter(action="alert_preferences.update", actor=viewer_user).count() == 2


@pytest.mark.parametrize("body, field", [
    ({"min_severity": "dire"}, "min_severity"),
    ({"muted_rules": ["00000000-0000-0000-0000-000000000009"]}, "muted_rules"),
    ({"muted_rules": ["nope"]}, "muted_rules"),
    ({"muted_rules": "all"}, "muted_rules"),
    ({"email_enabled": "maybe"}, "email_enabled"),
])
def test_bad_preferences_are_refused_naming_the_field(viewer_api, body, field):
    response = viewer_api.put(PREFS, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


def test_preferences_need_a_signed_in_user(anon_api):
    assert anon_api.get(PREFS).status_code == 401
    assert anon_api.put(PREFS, {"email_enabled": False}, format="json").status_code == 401


def test_every_alerting_endpoint_is_in_the_schema_with_its_shapes(viewer_api):
    schema = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/alert-rules/": {"get", "post"}, "/api/v1/alert-rules/{id}/": {"get", "patch", "delete"},
        "/api/v1/alert-rules/kinds/": {"get"}, "/api/v1/alerts/": {"get"}, "/api/v1/alerts/{id}/": {"get"},
        "/api/v1/alerts/{id}/acknowledge/": {"post"}, "/api/v1/alerts/{id}/snooze/": {"post"},
        "/api/v1/webhooks/": {"get", "post"}, "/api/v1/webhooks/{id}/": {"get", "patch", "delete"},
        "/api/v1/webhooks/{id}/test/": {"post"}, "/api/v1/webhooks/{id}/deliveries/": {"get"},
        "/api/v1/maintenance-windows/": {"get", "post"}, "/api/v1/maintenance-windows/{id}/": {"get", "delete"},
        "/api/v1/me/alert-preferences/": {"get", "put", "patch"},
    }.items():
        assert path in paths, path
        assert set(paths[path]) - {"parameters"} == methods, path
    components = schema["components"]["schemas"]
    assert "secret" in components["WebhookCreated"]["properties"] and "secret" not in components["Webhook"]["properties"]
    assert {"timeline", "notifications", "remediation_runs"} <= set(components["AlertDetail"]["properties"])
    snooze = paths["/api/v1/alerts/{id}/snooze/"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert snooze.endswith("/Snooze")
    filters = {p["name"] for p in paths["/api/v1/alerts/"]["get"]["parameters"]}
    assert {"state", "severity", "rule", "group", "subject_type", "subject_id", "flapping", "acknowledged"} <= filters
