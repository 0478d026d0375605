"""The rules, webhooks, maintenance windows and preferences pages: forms per kind in the user's
terms, errors answered with 422 and the form in place, the secret shown once, role checks."""

import pytest
from django.utils import timezone

from devices.tests.factories import DeviceGroupFactory
from mdm.alerts.kinds import KINDS
from mdm.alerts import services
from mdm.alerts.models import AlertRule, MaintenanceWindow, NotificationPreference, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def _rule_post(**overrides) -> dict:
    data = {"name": "Lobby battery", "enabled": "on", "severity": "warning", "param_percent": "20", "hold": "2",
            "hold_unit": "min", "clear": "90", "clear_unit": "s", "scope_kind": "all", "notify_admins": "on"}
    return {**data, **overrides}


def test_the_rules_page_lists_every_rule_in_words(console_for, viewer_user, django_assert_max_num_queries):
    client = console_for(viewer_user)
    with django_assert_max_num_queries(8):
        page = client.get("/alerts/rules/").content.decode()
    assert page.count('<tr id="rule-row-') == len(KINDS)
    assert "Device offline: offline for 10 min" in page and "at once / at once" in page  # hold / clear
    assert "2 min / 5 min" in page  # battery low
    assert "/enabled/" not in page and "New rule" not in page  # viewers read only


def test_a_failing_rule_is_named_on_the_rules_page_and_on_its_own(console_for, viewer_user):
    rule = AlertRule.objects.get(seed_key="battery_hot")
    AlertRule.objects.filter(pk=rule.pk).update(failing_since=timezone.now(), failure="RuntimeError: <boom>")
    client = console_for(viewer_user)
    page = client.get("/alerts/rules/").content.decode()
    assert 'id="rules-failing"' in page and f'href="/alerts/rules/{rule.pk}/">{rule.name}</a>.' in page
    assert page.count('class="error rule-failing"') == 1 and "RuntimeError: &lt;boom&gt;" in page  # escaped
    own = client.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert 'id="rule-failing"' in own and "RuntimeError: &lt;boom&gt;" in own
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)  # a disabled rule watches nothing anyway
    assert "rule-failing" not in client.get("/alerts/rules/").content.decode()
    AlertRule.objects.filter(pk=rule.pk).update(enabled=True, failing_since=None, failure="")
    assert "rule-failing" not in client.get("/alerts/rules/").content.decode()


def test_an_admin_disables_and_enables_a_rule_from_the_list(console_for, admin_user):
    rule = AlertRule.objects.get(seed_key="battery_low")
    client = console_for(admin_user)
    response = client.post(f"/alerts/rules/{rule.pk}/enabled/", {"enabled": "false"})
    assert response.status_code == 200 and ">Enable</button>" in response.content.decode()
    rule.refresh_from_db()
    assert not rule.enabled
    client.post(f"/alerts/rules/{rule.pk}/enabled/", {"enabled": "true"})
    rule.refresh_from_db()
    assert rule.enabled


def test_the_edit_form_shows_params_in_their_units_and_hold_in_minutes(console_for, admin_user):
    rule = AlertRule.objects.get(seed_key="device_offline")
    page = console_for(admin_user).get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert "Offline for (minutes)" in page and 'name="param_minutes"' in page and 'value="10"' in page
    battery = AlertRule.objects.get(seed_key="battery_low")
    page = console_for(admin_user).get(f"/alerts/rules/{battery.pk}/").content.decode()
    assert 'name="hold" value="2"' in page and '<option value="min" selected>minutes</option>' in page


def test_an_admin_creates_a_rule_with_hold_in_minutes(console_for, admin_user):
    DeviceGroupFactory(name="Lobby")
    response = console_for(admin_user).post("/alerts/rules/new/?kind=battery_low",
                                            _rule_post(scope_kind="group", scope_group="Lobby"))
    assert response.status_code == 204 and response["HX-Redirect"] == "/alerts/rules/"
    rule = AlertRule.objects.get(name="Lobby battery")
    assert (rule.kind, rule.params, rule.hold_s, rule.clear_s, rule.scope) == ("battery_low", {"percent": 20}, 120, 90,
                                                                               {"group": "Lobby"})
    assert rule.notify == {"admins": True, "users": [], "emails": [], "webhooks": []}


@pytest.mark.parametrize("overrides, message", [
    ({"param_percent": "0"}, "Battery under (%): a whole number from 1 to 100."),
    ({"param_percent": "lots"}, "Battery under (%): a whole number from 1 to 100."),
    ({"hold": "10081"}, "Hold before firing: at most 7 days (10080 minutes, 604800 seconds)."),
    ({"clear": "-1"}, "Clear before resolving: 0 or more."),
    ({"name": "Device offline"}, "A rule with this name exists."),
    ({"notify_emails": "ops@example.com\nnot an address"}, "Not an e-mail address: not an address"),
    ({"scope_kind": "group"}, "Pick the group."),
])
def test_a_bad_rule_form_is_answered_in_place_with_422_in_the_users_terms(console_for, admin_user, overrides, message):
    response = console_for(admin_user).post("/alerts/rules/new/?kind=battery_low", _rule_post(**overrides))
    assert response.status_code == 422
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="rule-form"') and message in body
    assert not AlertRule.objects.filter(name="Lobby battery").exists()


def test_an_admin_edits_a_server_rule_which_has_no_scope(console_for, admin_user):
    rule = AlertRule.objects.get(seed_key="server_queue_depth")
    response = console_for(admin_user).post(f"/alerts/rules/{rule.pk}/", {
        "name": rule.name, "severity": "critical", "param_count": "5000", "hold": "0", "hold_unit": "s", "clear": "1",
        "clear_unit": "min"})
    assert response.status_code == 204, response.content.decode()
    rule.refresh_from_db()
    assert (rule.enabled, rule.severity, rule.params, rule.hold_s, rule.clear_s) == (False, "critical", {"count": 5000}, 0, 60)
    assert rule.notify["admins"] is False


def test_only_admins_change_rules(client, console_for, viewer_user, operator_user):
    rule = AlertRule.objects.get(seed_key="battery_low")
    assert client.get(f"/alerts/rules/{rule.pk}/").status_code == 302
    for user in (viewer_user, operator_user):
        c = console_for(user)
        assert c.get(f"/alerts/rules/{rule.pk}/").status_code == 200  # read, with the form disabled
        assert c.post(f"/alerts/rules/{rule.pk}/", _rule_post()).status_code == 403
        assert c.post(f"/alerts/rules/{rule.pk}/enabled/", {"enabled": "false"}).status_code == 403
        assert c.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 403
        assert c.get("/alerts/rules/new/").status_code == 403
    rule.refresh_from_db()
    assert rule.enabled and rule.params == {"percent": 15}


def test_an_admin_deletes_a_rule(console_for, admin_user):
    rule = AlertRule.objects.get(seed_key="clock_drift")
    response = console_for(admin_user).post(f"/alerts/rules/{rule.pk}/delete/")
    assert response.status_code == 204 and not AlertRule.objects.filter(pk=rule.pk).exists()


def test_a_new_webhook_shows_its_secret_once(console_for, admin_user):
    client = console_for(admin_user)
    response = client.post("/alerts/webhooks/", {"name": "pager", "url": "https://hooks.example.com/x", "enabled": "on"})
    assert response.status_code == 200
    body = response.content.decode()
    hook = WebhookEndpoint.objects.get()
    from commands import crypto

    secret = crypto.decrypt_bytes(hook.secret).decode()
    assert f'<code class="secret" id="webhook-secret">{secret}</code>' in body
    assert secret not in client.get("/alerts/webhooks/").content.decode()
    assert secret not in client.get(f"/alerts/webhooks/{hook.pk}/").content.decode()


def test_a_bad_webhook_form_is_answered_in_place(console_for, admin_user):
    response = console_for(admin_user).post("/alerts/webhooks/", {"name": "pager", "url": "ftp://x.example", "secret": "short"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "An http:// or https:// address" in body and "From 16 to 200 characters" in body
    assert not WebhookEndpoint.objects.exists()


def test_the_test_button_logs_a_delivery(console_for, admin_user, capture_on_commit):
    from tests.webhook_receiver import Receiver

    with Receiver(statuses=(200,)) as receiver:
        hook = services.create_webhook(actor=admin_user, name="local", url=receiver.url, secret="x" * 20)
        with capture_on_commit(execute=True):
            response = console_for(admin_user).post(f"/alerts/webhooks/{hook.pk}/test/")
        assert len(receiver.requests) == 1
    assert response.status_code == 200 and "Test queued" in response.content.decode()
    assert WebhookDelivery.objects.get().is_test
    log = console_for(admin_user).get(f"/alerts/webhooks/{hook.pk}/", HTTP_HX_REQUEST="true",
                                      HTTP_HX_TARGET="webhook-deliveries").content.decode()
    assert "Succeeded" in log and "HTTP 200" in log


def test_an_admin_edits_a_webhook_keeping_its_secret(console_for, admin_user):
    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    old = hook.secret
    response = console_for(admin_user).post(f"/alerts/webhooks/{hook.pk}/", {"name": "pager-2", "url": "https://b.example"})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    hook.refresh_from_db()
    assert (hook.name, hook.url, hook.enabled, hook.secret) == ("pager-2", "https://b.example", False, old)


def test_webhooks_pages_are_for_admins(client, console_for, operator_user, admin_user):
    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    assert client.get("/alerts/webhooks/").status_code == 302
    c = console_for(operator_user)
    for path in ("/alerts/webhooks/", f"/alerts/webhooks/{hook.pk}/"):
        assert c.get(path).status_code == 403
    assert c.post(f"/alerts/webhooks/{hook.pk}/test/").status_code == 403
    assert c.post(f"/alerts/webhooks/{hook.pk}/delete/").status_code == 403
    assert WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


def test_an_operator_adds_and_ends_a_maintenance_window(console_for, operator_user):
    DeviceGroupFactory(name="Lobby")
    client = console_for(operator_user)
    response = client.post("/alerts/maintenance/", {"group": "Lobby", "duration_minutes": "30", "reason": "painting"})
    assert response.status_code == 200 and "Window added." in response.content.decode()
    w = MaintenanceWindow.objects.get()
    assert w.group.name == "Lobby" and w.reason == "painting" and w.starts_at <= timezone.now() < w.ends_at
    response = client.post(f"/alerts/maintenance/{w.pk}/delete/")
    assert response.status_code == 200 and not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize("data, message", [
    ({"duration_minutes": "0"}, "Lasts (minutes): a whole number from 1 to 129,600."),
    ({"duration_minutes": "30", "starts_at": "2020-01-01T10:00"}, "Must be in the future"),
    ({"duration_minutes": "30", "starts_at": "someday"}, "Starts: a date and time."),
])
def test_a_bad_window_is_answered_in_place(console_for, operator_user, data, message):
    response = console_for(operator_user).post("/alerts/maintenance/", data)
    assert response.status_code == 422 and message in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_viewers_read_windows_but_do_not_write(console_for, viewer_user, operator_user):
    w = MaintenanceWindow.objects.create(starts_at=timezone.now(), ends_at=timezone.now() + timezone.timedelta(hours=1),
                                         reason="upgrade", created_by=operator_user)
    c = console_for(viewer_user)
    page = c.get("/alerts/maintenance/").content.decode()
    assert "upgrade" in page and "on now" in page and 'id="window-form"' not in page
    assert c.post("/alerts/maintenance/", {"duration_minutes": "30"}).status_code == 403
    assert c.post(f"/alerts/maintenance/{w.pk}/delete/").status_code == 403
    assert MaintenanceWindow.objects.count() == 1


def test_every_user_sets_their_own_preferences(console_for, viewer_user):
    rule = AlertRule.objects.get(seed_key="clock_drift")
    client = console_for(viewer_user)
    assert 'name="muted_rules"' in client.get("/alerts/preferences/").content.decode()
    response = client.post("/alerts/preferences/", {"min_severity": "warning", "muted_rules": [str(rule.pk)]})
    assert response.status_code == 200 and "Saved." in response.content.decode()
    pref = NotificationPreference.objects.get(user=viewer_user)
    assert (pref.email_enabled, pref.min_severity, list(pref.muted_rules.all())) == (False, "warning", [rule])
    refused = client.post("/alerts/preferences/", {"min_severity": "dire"})
    assert refused.status_code == 422 and "Select a valid choice" in refused.content.decode()
