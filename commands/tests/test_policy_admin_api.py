"""The policies admin API (PROTOCOL.md "Admin API essentials", v1.1): admins write, everyone
signed in reads with secrets masked, anonymous is 401; every change is audited."""

import json

import pytest

from commands import services
from commands.policies import reports
from commands.tests.conftest import make_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

ITEMS = {"kiosk": {"package": "com.example.kiosk"}, "restrictions": ["no_factory_reset"]}


@pytest.fixture
def wifi(admin_user):
    return services.create_wifi_config(actor=admin_user, name="Shop", ssid="shop-net", password="hunter22-pass")


def create(api, name="Kiosks", items=None):
    return api.post("/api/v1/policies", {"name": name, "items": items or ITEMS}, format="json")


def test_an_admin_creates_reads_and_updates_a_policy(admin_api):
    created = create(admin_api)
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "version"} and body["version"] > 0
    got = admin_api.get(f"/api/v1/policies/{body['id']}").json()
    assert got["name"] == "Kiosks" and got["version"] == body["version"]
    assert got["items"]["kiosk"]["package"] == "com.example.kiosk"
    updated = admin_api.put(f"/api/v1/policies/{body['id']}", {"items": {"restrictions": ["no_debugging_features"]}}, format="json")
    assert updated.status_code == 200 and updated.json()["version"] > body["version"]
    versions = admin_api.get(f"/api/v1/policies/{body['id']}/versions").json()["results"]
    assert [v["version"] for v in versions] == [updated.json()["version"], body["version"]]
    listed = admin_api.get("/api/v1/policies").json()["results"]
    assert [p["name"] for p in listed] == ["Kiosks"]


def test_wifi_passwords_are_masked_in_every_answer_and_the_audit_log(admin_api, viewer_api, wifi):
    created = create(admin_api, items={"wifi": [str(wifi.pk)]}).json()
    for api in (admin_api, viewer_api):
        shown = api.get(f"/api/v1/policies/{created['id']}").json()
        assert shown["items"]["wifi"][0]["password"] == "***"
        assert "hunter22" not in json.dumps(api.get("/api/v1/policies").json())
    events = AuditEvent.objects.filter(action__startswith="policy.")
    assert events.exists() and "hunter22" not in json.dumps(list(events.values_list("data", flat=True)))


def test_bad_items_are_a_400_naming_the_item_and_field(admin_api):
    response = create(admin_api, items={"system_update": {"type": "windowed", "window_start_min": 2000, "window_end_min": 10}})
    assert response.status_code == 400
    assert "items.system_update.window_start_min" in response.json()["fields"]
    assert create(admin_api, items=[1]).status_code == 400
    assert admin_api.post("/api/v1/policies", {"items": ITEMS}, format="json").status_code == 400  # no name


def test_a_duplicate_name_is_a_400(admin_api):
    create(admin_api)
    assert create(admin_api).status_code == 400


@pytest.mark.parametrize("who", ["operator_api", "viewer_api"])
def test_below_admin_reads_but_cannot_write(request, admin_api, who):
    api = request.getfixturevalue(who)
    policy_id = create(admin_api).json()["id"]
    assert api.get(f"/api/v1/policies/{policy_id}").status_code == 200
    assert create(api, name="mine").status_code == 403
    assert api.put(f"/api/v1/policies/{policy_id}", {"items": ITEMS}, format="json").status_code == 403
    assert api.post(f"/api/v1/policies/{policy_id}/assign", {"target": {"all": True}}, format="json").status_code == 403


def test_anonymous_is_401(anon_api, admin_api):
    policy_id = create(admin_api).json()["id"]
    assert anon_api.get("/api/v1/policies").status_code == 401
    assert anon_api.get(f"/api/v1/policies/{policy_id}").status_code == 401
    assert create(anon_api).status_code == 401


def test_changes_are_audited_with_a_diff_summary(admin_api):
    make_device(group="shops")
    policy_id = create(admin_api).json()["id"]
    admin_api.put(f"/api/v1/policies/{policy_id}", {"items": {"kiosk": {"package": "com.example.other"},
                                                              "settings": {"auto_time": True}}}, format="json")
    admin_api.post(f"/api/v1/policies/{policy_id}/assign", {"target": {"group": "shops"}}, format="json")
    actions = list(AuditEvent.objects.filter(target_id=policy_id).order_by("at").values_list("action", flat=True))
    assert actions == ["policy.create", "policy.update", "policy.assign"]
    update = AuditEvent.objects.get(target_id=policy_id, action="policy.update")
    assert update.data["diff"] == {"added": ["settings"], "removed": ["restrictions"], "changed": ["kiosk"]}
    assign = AuditEvent.objects.get(target_id=policy_id, action="policy.assign")
    assert assign.data["target"] == {"group": "shops"} and assign.data["target_count"] == 1


def test_assign_refuses_a_bad_target_with_a_400(admin_api):
    policy_id = create(admin_api).json()["id"]
    for target in ({"group": "nope"}, {"device_ids": ["x"]}, {}, "all"):
        response = admin_api.post(f"/api/v1/policies/{policy_id}/assign", {"target": target}, format="json")
        assert response.status_code == 400, target


def test_the_device_detail_shows_its_policy_and_compliance(admin_api, viewer_api):
    sim = make_device()
    policy_id = create(admin_api).json()["id"]
    assert viewer_api.get(f"/api/v1/devices/{sim.id}").json()["policy"] is None
    admin_api.post(f"/api/v1/policies/{policy_id}/assign", {"target": {"device_ids": [sim.id]}}, format="json")
    shown = viewer_api.get(f"/api/v1/devices/{sim.id}").json()["policy"]
    assert shown["id"] == policy_id and shown["applied_version"] is None and shown["compliant"] is False
    version = shown["version"]
    sim.client().put("/api/v1/device/policy/status", data=json.dumps(
        {"version": version, "items": {"kiosk": {"state": "applied"}, "restrictions": {"state": "pending", "reason": "reboot"}}}),
        content_type="application/json")
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    shown = viewer_api.get(f"/api/v1/devices/{sim.id}").json()["policy"]
    assert shown["applied_version"] == version and shown["compliant"] is False
    assert shown["items"]["restrictions"] == {"state": "pending", "reason": "reboot"}


def test_the_device_list_stays_within_its_query_bound_with_policies(admin_api, django_assert_max_num_queries):
    for _ in range(5):
        make_device()
    policy_id = create(admin_api).json()["id"]
    admin_api.post(f"/api/v1/policies/{policy_id}/assign", {"target": {"all": True}}, format="json")
    with django_assert_max_num_queries(8):
        results = admin_api.get("/api/v1/devices").json()["results"]
    assert all(r["policy"]["id"] == policy_id for r in results)
