from mdm.models import AuditEvent, FleetSettings

VALID = {
    "heartbeat_interval_s": "20",
    "offline_after_s": "",
    "history_retention_days": "14",
    "default_command_expiry_min": "120",
    "reenroll_policy": "approval",
    "audit_retention_days": "365",
}


def test_every_signed_in_user_can_read_the_settings_drawer(console_for, viewer_user):
    response = console_for(viewer_user).get("/settings/")
    assert response.status_code == 200
    assert b'name="heartbeat_interval_s"' in response.content
    assert b"Only admins can change these." in response.content


def test_a_viewer_or_operator_cannot_change_fleet_settings(console_for, viewer_user, operator_user):
    for user in (viewer_user, operator_user):
        response = console_for(user).post("/settings/", VALID)
        assert response.status_code == 403
    assert FleetSettings.current().heartbeat_interval_s == 30


def test_an_admin_saves_fleet_settings_and_it_is_audited(console_for, admin_user):
    response = console_for(admin_user).post("/settings/", VALID, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Trigger"] == "fleetSettingsSaved"
    FleetSettings.forget_cached()
    fleet = FleetSettings.current()
    assert (fleet.heartbeat_interval_s, fleet.history_retention_days, fleet.reenroll_policy) == (20, 14, "approval")
    assert fleet.offline_threshold_s == 60
    event = AuditEvent.objects.get(action="fleet_settings.update")
    assert event.data["heartbeat_interval_s"] == {"from": 30, "to": 20}


def test_invalid_settings_are_refused_with_the_reason_and_nothing_changes(console_for, admin_user):
    response = console_for(admin_user).post("/settings/", {**VALID, "heartbeat_interval_s": "2", "offline_after_s": "1"})
    assert response.status_code == 422
    assert b"Between 10 and 3600 seconds." in response.content
    FleetSettings.forget_cached()
    assert FleetSettings.current().heartbeat_interval_s == 30
    assert not AuditEvent.objects.exists()


def test_offline_threshold_defaults_to_three_intervals():
    assert FleetSettings(heartbeat_interval_s=10).offline_threshold_s == 30
    assert FleetSettings(heartbeat_interval_s=10, offline_after_s=45).offline_threshold_s == 45
