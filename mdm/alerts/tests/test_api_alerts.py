"""/api/v1/alerts: filters, an alert with its timeline and notifications, acknowledge and snooze
by operators, outsiders refused."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from mdm.alerts import services, tasks
from mdm.alerts.models import Alert, AlertRule
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

ALERTS = "/api/v1/alerts"


def test_every_role_lists_the_firing_alerts(viewer_api, offline_alerts):
    response = viewer_api.get(ALERTS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["state"] == "firing" and first["severity"] == "warning" and first["group"] == "Lobby"
    assert first["rule"]["kind"] == "device_offline" and first["url"] == f"/alerts/{first['id']}/"


def test_the_list_holds_its_query_count_whatever_the_number_of_alerts(viewer_api, offline_alerts, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        assert viewer_api.get(ALERTS).status_code == 200


def test_the_filters_narrow_the_list(admin_user, viewer_api, offline_alerts):
    services.acknowledge(actor=admin_user, alert=offline_alerts[0])
    device_id = offline_alerts[1].subject_id

    def ids(query):
        response = viewer_api.get(f"{ALERTS}?{query}")
        assert response.status_code == 200, response.json()
        return {a["id"] for a in response.json()["results"]}

    everyone = {str(a.pk) for a in offline_alerts}
    assert ids("state=firing") == ids("state=open") == everyone
    assert ids("state=resolved") == set()
    assert ids("acknowledged=true") == {str(offline_alerts[0].pk)}
    assert ids("acknowledged=false") == everyone - {str(offline_alerts[0].pk)}
    assert ids(f"subject_type=device&subject_id={device_id}") == {str(offline_alerts[1].pk)}
    assert ids("group=Lobby&severity=warning&flapping=false") == everyone
    assert ids("group=Elsewhere") == ids("severity=critical") == ids("flapping=true") == set()
    assert ids(f"rule={offline_alerts[0].rule_id}") == everyone


@pytest.mark.parametrize("query", ["state=maybe", "severity=dire", "rule=not-a-uuid", "flapping=perhaps", "subject_type=planet",
                                   "group=" + "x" * 101])
def test_a_bad_filter_value_is_a_400(viewer_api, query):
    response = viewer_api.get(f"{ALERTS}?{query}")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_an_alert_answers_with_its_timeline_and_notifications(admin_user, viewer_api, offline_alerts, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alert = offline_alerts[0]
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        assert tasks.send_due() == 1  # the group window closed
        services.acknowledge(actor=admin_user, alert=alert)
    body = viewer_api.get(f"{ALERTS}/{alert.pk}").json()
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds == ["pending", "fired", "notified", "acknowledged"]
    assert body["timeline"][2]["text"] == "Notified: 1 e-mail recipient, 0 webhooks"
    assert body["timeline"][3]["text"] == "Acknowledged by alice-admin"
    (n,) = body["notifications"]
    assert n["state"] == "sent" and n["recipients"] == 1 and n["subject"].startswith("[warning] 3 devices in group Lobby")
    assert body["acknowledged_by"] == "alice-admin" and body["remediation_runs"] == []
    told = viewer_api.get(f"{ALERTS}?notification={n['id']}").json()
    assert told["count"] == 3


def test_an_operator_acknowledges_once_and_it_is_audited(operator_api, offline_alerts):
    alert = offline_alerts[0]
    response = operator_api.post(f"{ALERTS}/{alert.pk}/acknowledge")
    assert response.status_code == 200
    assert response.json()["acknowledged_by"] == "oscar-operator" and response.json()["acknowledged_at"]
    again = operator_api.post(f"{ALERTS}/{alert.pk}/acknowledge")
    assert again.status_code == 200 and again.json()["acknowledged_at"] == response.json()["acknowledged_at"]
    assert AuditEvent.objects.filter(action="alert.acknowledge").count() == 1


def test_an_operator_snoozes_for_minutes(operator_api, offline_alerts):
    alert = offline_alerts[0]
    before = timezone.now()
    response = operator_api.post(f"{ALERTS}/{alert.pk}/snooze", {"minutes": 90}, format="json")
    assert response.status_code == 200
    alert.refresh_from_db()
    assert 89 * 60 <= (alert.snoozed_until - before).total_seconds() <= 91 * 60


@pytest.mark.parametrize("body", [{}, {"minutes": 0}, {"minutes": 43201}, {"minutes": "soon"}, {"minutes": True}])
def test_a_snooze_needs_minutes_from_1_to_30_days(operator_api, offline_alerts, body):
    response = operator_api.post(f"{ALERTS}/{offline_alerts[0].pk}/snooze", body, format="json")
    assert response.status_code == 400 and "minutes" in response.json()["fields"]


def test_outsiders_are_refused(anon_api, viewer_api, offline_alerts):
    alert = offline_alerts[0]
    assert anon_api.get(ALERTS).status_code == 401
    assert anon_api.get(f"{ALERTS}/{alert.pk}").status_code == 401
    assert anon_api.post(f"{ALERTS}/{alert.pk}/acknowledge").status_code == 401
    assert viewer_api.post(f"{ALERTS}/{alert.pk}/acknowledge").status_code == 403
    assert viewer_api.post(f"{ALERTS}/{alert.pk}/snooze", {"minutes": 5}, format="json").status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.snoozed_until is None


def test_an_unknown_alert_is_a_404(operator_api):
    assert operator_api.post(f"{ALERTS}/00000000-0000-0000-0000-000000000009/acknowledge").status_code == 404


def test_a_resolved_alert_lists_under_resolved(viewer_api, offline_alerts):
    rule = AlertRule.objects.get(seed_key="device_offline")
    services.update_rule(actor=None, rule=rule, data={"enabled": False})
    assert viewer_api.get(f"{ALERTS}?state=resolved").json()["count"] == 3
    assert Alert.objects.filter(state="resolved").count() == 3
