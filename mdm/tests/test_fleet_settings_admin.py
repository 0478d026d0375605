"""The Django admin edits fleet settings through the console's form (issue 14, finding 8): an
out-of-range value posted through /admin/ is refused with the same reason, and nothing changes."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.models import AuditEvent, FleetSettings

URL = "/admin/mdm/fleetsettings/1/change/"
VALID = {
    "heartbeat_interval_s": "20",
    "offline_after_s": "",
    "history_retention_days": "14",
    "default_command_expiry_min": "120",
    "reenroll_policy": FleetSettings.Reenroll.APPROVAL,
    "audit_retention_days": "365",
}


@pytest.fixture
def superuser_console(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.test", "x-Passphrase-1")
    client.force_login(user)
    FleetSettings.objects.get_or_create(pk=1)
    return client


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("heartbeat_interval_s", "1", "Between 10 and 3600 seconds."),
        ("heartbeat_interval_s", "86400", "Between 10 and 3600 seconds."),
        ("history_retention_days", "100000", "Between 1 and 3650 days."),
        ("default_command_expiry_min", "0", "Between 1 minute and 30 days (43,200 minutes)."),
        ("default_command_expiry_min", "43201", "Between 1 minute and 30 days (43,200 minutes)."),
        ("offline_after_s", "604801", "Between 10 seconds and 7 days (604,800 seconds)."),
        ("heartbeat_interval_s", "-5", "Between 10 and 3600 seconds."),
        ("offline_after_s", "15", "Must be at least one heartbeat interval."),
    ],
)
def test_an_out_of_range_value_through_the_admin_is_refused(superuser_console, field, value, reason):
    response = superuser_console.post(URL, {**VALID, field: value})
    assert response.status_code == 200  # the change form again, with the error
    assert reason in response.content.decode()
    FleetSettings.forget_cached()
    assert FleetSettings.current().heartbeat_interval_s == 30 and FleetSettings.current().history_retention_days == 30
    assert not AuditEvent.objects.filter(action="fleet_settings.update").exists()


def test_a_value_in_range_through_the_admin_is_saved_and_audited(superuser_console):
    response = superuser_console.post(URL, VALID)
    assert response.status_code == 302
    FleetSettings.forget_cached()
    assert FleetSettings.current().heartbeat_interval_s == 20
    assert AuditEvent.objects.get(action="fleet_settings.update").data["heartbeat_interval_s"] == {"from": 30, "to": 20}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(interval=st.integers(-(2**40), 2**40))
def test_the_admin_accepts_exactly_what_the_console_accepts(superuser_console, console_for, interval):
    from mdm.forms import FleetSettingsForm

    console_ok = FleetSettingsForm({**VALID, "heartbeat_interval_s": str(interval)}, instance=FleetSettings(pk=1)).is_valid()
    response = superuser_console.post(URL, {**VALID, "heartbeat_interval_s": str(interval)})
    assert response.status_code == (302 if console_ok else 200)
    assert console_ok == (10 <= interval <= 3600)
