"""Audit retention is a fleet setting (365 days by default, 30 at least), edited in the settings
drawer by admins; the periodic prune (mdm.tasks.prune_audit) deletes what is older, in batches."""

import pytest

from mdm import services, tasks
from mdm.models import AuditEvent, FleetSettings
from mdm.tests.audit_helpers import days_ago, event

SETTINGS = {
    "heartbeat_interval_s": "30",
    "offline_after_s": "",
    "history_retention_days": "30",
    "default_command_expiry_min": "60",
    "reenroll_policy": "approval",
}


def test_a_new_installation_keeps_the_audit_log_for_365_days(db):
    assert FleetSettings.current().audit_retention_days == 365


def test_the_settings_drawer_shows_the_retention(console_for, viewer_user):
    html = console_for(viewer_user).get("/settings/").content.decode()
    assert 'name="audit_retention_days"' in html and 'value="365"' in html
    assert "Audit events older than this are deleted (30-3650 days)." in html


def test_an_admin_changes_the_retention_and_it_is_audited(console_for, admin_user):
    response = console_for(admin_user).post("/settings/", {**SETTINGS, "audit_retention_days": "90"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    FleetSettings.forget_cached()
    assert FleetSettings.current().audit_retention_days == 90
    change = AuditEvent.objects.get(action="fleet_settings.update")
    assert change.data["audit_retention_days"] == {"from": 365, "to": 90}


@pytest.mark.parametrize("value", ["29", "0", "3651", "-1", "many"])
def test_a_retention_out_of_range_is_refused_in_days(console_for, admin_user, value):
    response = console_for(admin_user).post("/settings/", {**SETTINGS, "audit_retention_days": value})
    assert response.status_code == 422
    assert "Between 30 and 3650 days." in response.content.decode()  # in days, whatever was wrong
    FleetSettings.forget_cached()
    assert FleetSettings.current().audit_retention_days == 365


def test_operators_and_viewers_cannot_change_the_retention(console_for, operator_user, viewer_user):
    for user in (operator_user, viewer_user):
        assert console_for(user).post("/settings/", {**SETTINGS, "audit_retention_days": "30"}).status_code == 403
    FleetSettings.forget_cached()
    assert FleetSettings.current().audit_retention_days == 365


def test_the_prune_deletes_events_past_the_fleet_retention_and_keeps_the_rest(db):
    services.update_fleet_settings(actor=None, audit_retention_days=60)
    FleetSettings.forget_cached()
    old = [event(action="old", at=days_ago(61)) for _ in range(3)]
    kept = [event(action="kept", at=days_ago(59)), event(action="new")]
    assert tasks.prune_audit() == len(old)
    assert set(AuditEvent.objects.exclude(action="fleet_settings.update").values_list("action", flat=True)) == {"kept", "new"}
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in kept]).count() == 2


def test_the_prune_never_goes_under_30_days_whatever_the_row_says(db):
    FleetSettings.objects.update_or_create(pk=1, defaults={"audit_retention_days": 1})  # past the form, e.g. by SQL
    FleetSettings.forget_cached()
    event(action="recent", at=days_ago(20))
    event(action="old", at=days_ago(31))
    assert tasks.prune_audit() == 1
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["recent"]


def test_a_large_backlog_is_deleted_in_batches(db, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(services, "PRUNE_BATCH", 2)
    for _ in range(5):
        event(action="old", at=days_ago(400))
    event(action="new")
    # Per batch: pick the ids, delete them; then one pick that finds none.
    with django_assert_num_queries(3 * 2 + 1):
        assert services.prune_audit(older_than=days_ago(365)) == 5
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["new"]


def test_the_prune_runs_periodically():
    from mdm.celery import app

    entry = app.conf.beat_schedule["mdm-prune-audit"]
    assert entry["task"] == "mdm.tasks.prune_audit" and not entry.get("args")
