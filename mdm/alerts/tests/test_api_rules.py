"""/api/v1/alert-rules: every role reads, admins write; the kind catalogue; errors name the field."""

import pytest

from mdm.alerts.kinds import KINDS
from mdm.alerts.models import AlertRule
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

RULES = "/api/v1/alert-rules"


def test_every_role_lists_the_seeded_rules_with_their_condition_in_words(viewer_api):
    response = viewer_api.get(RULES)
    assert response.status_code == 200
    rules = {r["kind"]: r for r in response.json()["results"]}
    assert len(rules) == len(KINDS)
    offline = rules["device_offline"]
    assert offline["condition"] == "offline for 10 min" and offline["builtin"] is True and offline["params"] == {"minutes": 10}
    assert (offline["failing_since"], offline["failure"]) == (None, "")  # set while its evaluation fails


def test_the_kind_catalogue_gives_each_kind_its_params_with_labels_and_bounds(viewer_api):
    kinds = {k["kind"]: k for k in viewer_api.get(f"{RULES}/kinds").json()}
    assert len(kinds) == len(KINDS)
    offline = kinds["device_offline"]
    assert offline["label"] == "Device offline" and offline["subject"] == "device"
    assert offline["params"] == [{"name": "minutes", "label": "offline for (minutes)", "type": "integer", "min": 1.0,
                                  "max": 10080.0, "default": 10.0}]
    assert kinds["battery_hot"]["params"][0]["type"] == "number"
    assert kinds["rollout_halted"]["params"] == [] and kinds["rollout_halted"]["subject"] == "rollout"


def test_an_admin_creates_a_rule_with_defaults_from_its_kind_and_it_is_audited(admin_api):
    response = admin_api.post(RULES, {"name": "Lobby battery", "kind": "battery_low", "params": {"percent": 20},
                                      "scope": {"group": "Lobby"}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["severity"], body["hold_s"], body["clear_s"]) == ("warning", 120, 300)
    assert body["params"] == {"percent": 20} and body["scope"] == {"group": "Lobby"} and body["builtin"] is False
    assert AuditEvent.objects.filter(action="alert_rule.create", target_id=body["id"]).exists()


def test_a_param_out_of_range_is_a_400_naming_it_in_the_users_terms(admin_api):
    response = admin_api.post(RULES, {"name": "x", "kind": "device_offline", "params": {"minutes": 0}}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["fields"] == {"params.minutes": ["offline for (minutes): from 1 to 10,080."]}
    assert body["detail"] == "params.minutes: offline for (minutes): from 1 to 10,080."


@pytest.mark.parametrize("data, field", [
    ({"name": "x", "kind": "nope"}, "kind"),
    ({"kind": "device_offline"}, "name"),
    ({"name": "x", "kind": "device_offline", "hold_s": -1}, "hold_s"),
    ({"name": "x", "kind": "device_offline", "severity": "dire"}, "severity"),
    ({"name": "x", "kind": "device_offline", "params": {"hours": 2}}, "params"),
    ({"name": "x", "kind": "rollout_halted", "scope": {"group": "Lobby"}}, "scope"),
    ({"name": "x", "kind": "device_offline", "scope": {"device_ids": ["00000000-0000-0000-0000-000000000001"]}}, "scope"),
    ({"name": "x", "kind": "device_offline", "notify": {"emails": ["not-an-address"]}}, "notify.emails"),
    ({"name": "x", "kind": "device_offline", "scope": {"group": "Lob\u0000by"}}, "scope"),
    ({"name": "Device offline", "kind": "device_offline"}, "name"),
    ({"name": "x", "kind": "device_offline", "scope": {"filter": {"battery_below": "1e400"}}}, "scope"),
    ({"name": "x", "kind": "device_offline", "notify": {"users": ["not-a-user"]}}, "notify.users"),
    ({"name": "x", "kind": "device_offline", "notify": {"webhooks": ["00000000-0000-0000-0000-000000000009"]}}, "notify.webhooks"),
    ({"name": "x", "kind": "device_offline", "remediation": "reboot"}, "remediation"),
    ({"name": "x", "kind": "device_offline", "params": {"minutes": 10**40}}, "params.minutes"),
])
def test_bad_rules_are_refused_with_the_field_named(admin_api, data, field):
    response = admin_api.post(RULES, data, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]


def test_a_body_that_is_not_an_object_is_a_400(admin_api):
    assert admin_api.post(RULES, [1, 2], format="json").status_code == 400


def test_an_admin_changes_and_disables_a_rule_but_not_its_kind(admin_api):
    rule = AlertRule.objects.get(seed_key="battery_low")
    response = admin_api.patch(f"{RULES}/{rule.pk}", {"params": {"percent": 30}, "hold_s": 60, "enabled": False}, format="json")
    assert response.status_code == 200
    rule.refresh_from_db()
    assert (rule.params, rule.hold_s, rule.enabled) == ({"percent": 30}, 60, False)
    refused = admin_api.patch(f"{RULES}/{rule.pk}", {"kind": "storage_low"}, format="json")
    assert refused.status_code == 400 and "kind" in refused.json()["fields"]


def test_an_admin_deletes_a_rule(admin_api):
    rule = AlertRule.objects.get(seed_key="clock_drift")
    assert admin_api.delete(f"{RULES}/{rule.pk}").status_code == 204
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    assert AuditEvent.objects.filter(action="alert_rule.delete").exists()


def test_outsiders_are_refused(anon_api, viewer_api, operator_api):
    rule = AlertRule.objects.get(seed_key="battery_low")
    assert anon_api.get(RULES).status_code == 401
    assert anon_api.get(f"{RULES}/kinds").status_code == 401
    for caller in (viewer_api, operator_api):
        assert caller.post(RULES, {"name": "x", "kind": "device_offline"}, format="json").status_code == 403
        assert caller.patch(f"{RULES}/{rule.pk}", {"enabled": False}, format="json").status_code == 403
        assert caller.delete(f"{RULES}/{rule.pk}").status_code == 403
    rule.refresh_from_db()
    assert rule.enabled


def test_an_unknown_rule_is_a_404_in_the_api_shape(viewer_api):
    response = viewer_api.get(f"{RULES}/00000000-0000-0000-0000-000000000009")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_rule_may_tell_named_users_and_webhooks(admin_api, operator_user, admin_user):
    from mdm.alerts import services

    hook = services.create_webhook(actor=admin_user, name="pager", url="https://a.example", secret="x" * 20)
    response = admin_api.post(RULES, {"name": "x", "kind": "device_offline", "notify": {
        "admins": False, "users": [str(operator_user.pk)], "webhooks": [str(hook.pk)], "emails": ["ops@example.com"]}}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["notify"] == {"admins": False, "users": [str(operator_user.pk)], "webhooks": [str(hook.pk)],
                                         "emails": ["ops@example.com"]}
