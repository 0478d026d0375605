"""The alerts pages of the console: the list with its tabs and filters (a bounded number of
queries), an alert's page and timeline, acknowledge and snooze, the device page's section, the
open count in the navigation and on the dashboard, and what goes out live."""

import pytest

from mdm import realtime
from mdm.alerts import live, services
from mdm.alerts.models import Alert

pytestmark = pytest.mark.django_db


def test_the_alerts_page_lists_the_open_alerts_with_their_tabs(console_for, viewer_user, offline_alerts):
    page = console_for(viewer_user).get("/alerts/").content.decode()
    for a in offline_alerts:
        assert f'id="alert-row-{a.pk}"' in page
    assert 'ws-connect="/ws/console/?topics=alerts"' in page and 'id="alerts-refresh"' in page
    assert 'Open <span class="tab-count">3</span>' in page and 'Resolved <span class="tab-count">0</span>' in page
    assert "/acknowledge/" not in page and "/snooze/" not in page  # a viewer gets no buttons
    assert page.count("<td>last seen 20") == 3  # the value in the user's terms, not a timestamp repr


def test_the_list_holds_its_query_count(console_for, viewer_user, offline_alerts, django_assert_max_num_queries):
    client = console_for(viewer_user)
    with django_assert_max_num_queries(10):
        assert client.get("/alerts/?tab=all").status_code == 200


def test_tabs_and_filters_narrow_the_list(console_for, operator_user, offline_alerts):
    services.acknowledge(actor=operator_user, alert=offline_alerts[0])
    client = console_for(operator_user)
    open_page = client.get("/alerts/").content.decode()
    assert f'hx-post="/alerts/{offline_alerts[1].pk}/acknowledge/"' in open_page  # operators get the buttons
    assert f"alert-row-{offline_alerts[0].pk}" not in open_page and f"alert-row-{offline_alerts[1].pk}" in open_page
    acked = client.get("/alerts/?tab=acknowledged").content.decode()
    assert f"alert-row-{offline_alerts[0].pk}" in acked and f"alert-row-{offline_alerts[1].pk}" not in acked
    assert "alert-row-" not in client.get("/alerts/?tab=all&severity=critical").content.decode()
    assert "alert-row-" not in client.get("/alerts/?tab=all&group=Elsewhere").content.decode()
    # a malformed filter is left out, not an error
    assert client.get("/alerts/?tab=all&rule=nope&severity=dire").content.decode().count("<tr id=\"alert-row-") == 3


def test_an_htmx_request_gets_only_the_live_part(console_for, viewer_user, offline_alerts):
    response = console_for(viewer_user).get("/alerts/?tab=all", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="alerts-live")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="alerts-live">') and "<html" not in body


def test_an_operator_acknowledges_from_the_list_and_gets_the_row_back(console_for, operator_user, offline_alerts):
    alert = offline_alerts[0]
    response = console_for(operator_user).post(f"/alerts/{alert.pk}/acknowledge/", HTTP_HX_REQUEST="true",
                                               HTTP_HX_TARGET=f"alert-row-{alert.pk}")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="alert-row-{alert.pk}"') and "acknowledged by oscar-operator" in body
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator_user


def test_an_operator_snoozes_from_the_alerts_page(console_for, operator_user, offline_alerts):
    alert = offline_alerts[0]
    response = console_for(operator_user).post(f"/alerts/{alert.pk}/snooze/", {"minutes": "60"}, HTTP_HX_REQUEST="true",
                                               HTTP_HX_TARGET="alerts-live")
    assert response.status_code == 200 and "Snoozed until" in response.content.decode()
    alert.refresh_from_db()
    assert alert.snoozed_until is not None


def test_a_snooze_of_no_offered_length_is_answered_in_place(console_for, operator_user, offline_alerts):
    alert = offline_alerts[0]
    response = console_for(operator_user).post(f"/alerts/{alert.pk}/snooze/", {"minutes": "7"}, HTTP_HX_REQUEST="true",
                                               HTTP_HX_TARGET=f"alert-row-{alert.pk}")
    assert response.status_code == 422 and "Pick how long to snooze." in response.content.decode()
    alert.refresh_from_db()
    assert alert.snoozed_until is None


def test_viewers_and_strangers_cannot_acknowledge(client, console_for, viewer_user, offline_alerts):
    alert = offline_alerts[0]
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 302
    assert console_for(viewer_user).post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert console_for(viewer_user).post(f"/alerts/{alert.pk}/snooze/", {"minutes": "60"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.snoozed_until is None


def test_an_alert_page_shows_its_timeline_in_words(console_for, operator_user, offline_alerts):
    alert = offline_alerts[0]
    services.snooze(actor=operator_user, alert=alert, minutes=60)
    page = console_for(operator_user).get(f"/alerts/{alert.pk}/").content.decode()
    assert "The condition started holding" in page and "Fired" in page and "Snoozed by oscar-operator until" in page
    assert "offline for 10 min" in page and f'href="/devices/{alert.subject_id}/"' in page
    assert console_for(operator_user).get("/alerts/00000000-0000-0000-0000-000000000009/").status_code == 404


def test_the_device_page_loads_its_alerts_section(console_for, viewer_user, offline_alerts):
    alert = offline_alerts[0]
    client = console_for(viewer_user)
    page = client.get(f"/devices/{alert.subject_id}/").content.decode()
    assert f'hx-get="/alerts/device/{alert.subject_id}/"' in page and 'id="device-alerts-refresh"' in page
    section = client.get(f"/alerts/device/{alert.subject_id}/").content.decode()
    assert f'href="/alerts/{alert.pk}/"' in section and "firing" in section
    assert client.get("/alerts/device/00000000-0000-0000-0000-000000000009/").status_code == 404


def test_the_navigation_and_dashboard_count_the_open_alerts(console_for, admin_user, viewer_user, offline_alerts):
    client = console_for(viewer_user)
    page = client.get("/").content.decode()
    assert 'class="nav-count alerts-open-count"' in page and 'hx-get="/alerts/count/"' in page
    assert 'class="n alerts-open-count"' in page  # the dashboard's card, filled by the same answer
    assert client.get("/alerts/count/").content.decode().strip() == '<span hx-swap-oob="innerHTML:.alerts-open-count">3</span>'
    for a in offline_alerts:
        services.acknowledge(actor=admin_user, alert=a)
    assert client.get("/alerts/count/").content.decode().strip() == '<span hx-swap-oob="innerHTML:.alerts-open-count"></span>'


def test_a_change_goes_live_to_the_pages_watching_it(offline_alerts, monkeypatch):
    sent = []
    monkeypatch.setattr(realtime, "send_many_now", lambda messages: sent.extend(messages))
    device_topic = f"device.{offline_alerts[0].subject_id}"
    realtime.watch(["fleet", "alerts", device_topic], 1)
    try:
        live.send([str(offline_alerts[0].pk)])
    finally:
        realtime.watch(["fleet", "alerts", device_topic], -1)
    messages = dict(sent)
    assert messages["fleet"].strip() == '<span hx-swap-oob="innerHTML:.alerts-open-count">3</span>'
    assert 'id="alerts-refresh"' in messages["alerts"] and 'hx-get=""' in messages["alerts"]
    assert 'hx-target="#alerts-live"' in messages["alerts"]
    assert f'hx-get="/alerts/device/{offline_alerts[0].subject_id}/"' in messages[device_topic]


def test_nothing_is_rendered_for_pages_nobody_has_open(offline_alerts, monkeypatch):
    sent = []
    monkeypatch.setattr(realtime, "send_many_now", lambda messages: sent.extend(messages))
    live.send([str(a.pk) for a in offline_alerts])
    assert sent == []


def test_acknowledging_broadcasts_after_commit(operator_user, offline_alerts, monkeypatch, capture_on_commit):
    calls = []
    monkeypatch.setattr(live, "send", lambda ids: calls.append(ids))
    with capture_on_commit(execute=False) as callbacks:
        services.acknowledge(actor=operator_user, alert=offline_alerts[0])
    assert calls == []
    for callback in callbacks:
        callback()
    assert calls == [[str(offline_alerts[0].pk)]]
    assert Alert.objects.filter(acknowledged_at__isnull=False).count() == 1


def test_the_link_in_a_notification_lists_its_alerts_whatever_their_state(console_for, admin_user, offline_alerts):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from mdm.alerts import tasks
    from mdm.alerts.models import Notification

    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        tasks.send_due()
    services.acknowledge(actor=admin_user, alert=offline_alerts[0])
    n = Notification.objects.get()
    page = console_for(admin_user).get(f"/alerts/?notification={n.pk}").content.decode()
    assert page.count('<tr id="alert-row-') == 3 and f'name="notification" value="{n.pk}"' in page


@pytest.mark.parametrize("kind, value, words", [
    ("device_offline", "2026-12-04T11:49:58.123456+00:00", "last seen 2026-12-04 11:49"),
    ("battery_low", 7, "7%"),
    ("battery_hot", 47.5, "47.5 °C"),
    ("clock_drift", -420, "-420 s"),
    ("command_failure_rate", {"failed": 4, "results": 10}, "4 of 10 failed"),
    ("server_worker_silent", None, "never heard from"),
    ("server_worker_silent", 5400, "silent 1 h 30 min"),
    ("rollout_halted", "wave 2: 30% failed", "wave 2: 30% failed"),
    ("server_rule_failing", "RuntimeError: boom", "RuntimeError: boom"),
])
def test_a_value_reads_in_the_users_terms(kind, value, words):
    from mdm.alerts.models import AlertRule
    from mdm.alerts.templatetags.alerts_tags import value_words

    assert value_words(Alert(rule=AlertRule(kind=kind), value=value)) == words


def test_an_alert_about_a_failing_rule_links_to_that_rule(console_for, viewer_user):
    from django.utils import timezone

    from mdm.alerts.models import AlertRule

    AlertRule.objects.exclude(kind="server_rule_failing").update(enabled=False)
    AlertRule.objects.filter(kind="server_rule_failing").update(hold_s=0)
    broken = AlertRule.objects.get(seed_key="battery_hot")
    AlertRule.objects.filter(pk=broken.pk).update(enabled=True, failing_since=timezone.now(), failure="RuntimeError: boom")
    services.run_cycle(kinds=["server_rule_failing"])
    alert = Alert.objects.get(rule__kind="server_rule_failing")
    client = console_for(viewer_user)
    listed = client.get("/alerts/").content.decode()
    assert f'<a href="/alerts/rules/{broken.pk}/">{broken.name}</a>' in listed and "RuntimeError: boom" in listed
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert f'<a href="/alerts/rules/{broken.pk}/">{broken.name}</a>' in page
