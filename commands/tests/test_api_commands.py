"""The admin API for commands: issue (with dry run, idempotency, validation), list, detail,
cancel; who may do what."""

import time
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from commands.models import Command, Delivery
from commands.tests.conftest import make_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db
URL = "/api/v1/commands"


def post(api, body, **headers):
    return api.post(URL, body, format="json", **headers)


@pytest.fixture
def fleet(db):
    return [make_device(group="lobby", tags=["kiosk"]) for _ in range(3)] + [make_device(group="office")]


def test_an_operator_issues_a_command_to_device_ids(operator_api, fleet):
    response = post(operator_api, {"type": "ping", "target": {"device_ids": [fleet[0].id, fleet[1].id]}})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["target_count"] == 2
    command = Command.objects.get(pk=body["id"])
    assert command.deliveries.count() == 2 and set(command.deliveries.values_list("state", flat=True)) == {"queued"}
    assert AuditEvent.objects.filter(action="command.issue", target_id=body["id"]).exists()


@pytest.mark.parametrize(
    "target,expected",
    [({"group": "lobby"}, 3), ({"tags": ["kiosk"]}, 3), ({"all": True}, 4), ({"filter": {"group": "office"}}, 1)],
)
def test_targets_resolve_by_group_tags_filter_and_all(operator_api, fleet, target, expected):
    response = post(operator_api, {"type": "reboot", "target": target})
    assert response.status_code == 201, response.json()
    assert response.json()["target_count"] == expected


def test_a_dry_run_answers_the_resolved_ids_and_queues_nothing(operator_api, fleet):
    response = post(operator_api, {"type": "ping", "target": {"group": "lobby"}, "dry_run": True})
    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True and body["target_count"] == 3
    assert sorted(body["device_ids"]) == sorted(d.id for d in fleet[:3])
    assert Command.objects.count() == 0 and Delivery.objects.count() == 0


@pytest.mark.parametrize(
    "target",
    [{}, {"group": "nope"}, {"tags": ["nope"]}, {"device_ids": ["x"]}, {"device_ids": [str(uuid.uuid4())]},
     {"filter": {"colour": "red"}}, {"all": False}, {"group": "lobby", "all": True}, "all"],
)
def test_a_bad_target_is_a_400(operator_api, fleet, target):
    response = post(operator_api, {"type": "ping", "target": target})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "target" in response.json()["fields"]


def test_a_target_that_matches_nothing_is_a_400(operator_api, fleet):
    response = post(operator_api, {"type": "ping", "target": {"filter": {"battery_below": 1}}})
    assert response.status_code == 400


def test_the_same_idempotency_key_returns_the_original_answer(operator_api, fleet):
    body = {"type": "ping", "target": {"all": True}}
    first = post(operator_api, body, HTTP_IDEMPOTENCY_KEY="abc-1")
    again = post(operator_api, body, HTTP_IDEMPOTENCY_KEY="abc-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Command.objects.count() == 1


def test_the_same_idempotency_key_with_a_different_body_is_a_409(operator_api, fleet):
    post(operator_api, {"type": "ping", "target": {"all": True}}, HTTP_IDEMPOTENCY_KEY="abc-2")
    response = post(operator_api, {"type": "reboot", "target": {"all": True}}, HTTP_IDEMPOTENCY_KEY="abc-2")
    assert response.status_code == 409 and response.json()["code"] == "conflict"


def test_an_idempotency_key_is_honoured_for_24_hours_only(operator_api, operator_user, api_client_for, fleet):
    body = {"type": "ping", "target": {"all": True}}
    first = post(operator_api, body, HTTP_IDEMPOTENCY_KEY="abc-3").json()["id"]
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        later = post(api_client_for(operator_user), body, HTTP_IDEMPOTENCY_KEY="abc-3")
    assert later.status_code == 201 and later.json()["id"] != first


def test_expires_in_s_is_capped_at_30_days(operator_api, fleet):
    response = post(operator_api, {"type": "ping", "target": {"all": True}, "expires_in_s": 2_592_001})
    assert response.status_code == 400 and "expires_in_s" in response.json()["fields"]
    response = post(operator_api, {"type": "ping", "target": {"all": True}, "expires_in_s": 2_592_000})
    assert response.status_code == 201


def test_a_shell_command_outside_the_allowlist_is_refused_naming_the_rule(operator_api, fleet):
    response = post(operator_api, {"type": "shell", "params": {"argv": ["rm", "-rf", "/sdcard"]}, "target": {"all": True}})
    assert response.status_code == 400
    assert "shell allowlist" in response.json()["detail"]
    assert "argv" in response.json()["fields"]
    assert Command.objects.count() == 0


def test_a_shell_command_given_as_a_plain_string_is_refused(operator_api, fleet):
    response = post(operator_api, {"type": "shell", "params": {"argv": "pm list packages"}, "target": {"all": True}})
    assert response.status_code == 400 and "plain command string" in response.json()["detail"]


def test_a_shell_command_inside_the_allowlist_is_issued(operator_api, fleet):
    response = post(operator_api, {"type": "shell", "params": {"argv": ["df", "-h", "/data"]}, "target": {"all": True}})
    assert response.status_code == 201


def test_a_prefix_must_match_whole_arguments(operator_api, fleet):
    response = post(operator_api, {"type": "shell", "params": {"argv": ["getprop2"]}, "target": {"all": True}})
    assert response.status_code == 400


def test_install_apk_names_an_unknown_release(operator_api, fleet):
    # The release-backed params are tested in apks/tests/test_install_apk_params.py.
    response = post(operator_api, {"type": "install_apk", "params": {"apk_id": "x"}, "target": {"all": True}})
    assert response.status_code == 400 and "apk_id" in response.json()["fields"]


@pytest.mark.parametrize(
    "type,params",
    [("launch_app", {}), ("launch_app", {"package": "not a package"}), ("uninstall_app", {"package": 3}),
     ("wifi_configure", {"ssid": "x", "security": "wpa2", "password": "short"}), ("teleport", {}), ("ping", [])],
)
def test_bad_params_are_a_400_naming_the_field(operator_api, fleet, type, params):
    response = post(operator_api, {"type": type, "params": params, "target": {"all": True}})
    assert response.status_code == 400 and response.json()["fields"]


def test_viewers_cannot_issue_commands(viewer_api, fleet):
    assert post(viewer_api, {"type": "ping", "target": {"all": True}}).status_code == 403
    assert post(viewer_api, {"type": "ping", "target": {"all": True}, "dry_run": True}).status_code == 403


def test_anonymous_callers_get_401_everywhere(anon_api, fleet, admin_api):
    command_id = post(admin_api, {"type": "ping", "target": {"all": True}}).json()["id"]
    assert post(anon_api, {"type": "ping", "target": {"all": True}}).status_code == 401
    assert anon_api.get(URL).status_code == 401
    assert anon_api.get(f"{URL}/{command_id}").status_code == 401
    assert anon_api.post(f"{URL}/{command_id}/cancel").status_code == 401


def test_the_detail_has_deliveries_and_counters(operator_api, viewer_api, fleet):
    command_id = post(operator_api, {"type": "ping", "target": {"group": "lobby"}}).json()["id"]
    fleet[0].report(command_id, "succeeded", exit_code=0)
    response = viewer_api.get(f"{URL}/{command_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["counters"]["succeeded"] == 1 and body["counters"]["queued"] == 2 and body["counters"]["total"] == 3
    assert {d["device_id"] for d in body["deliveries"]} == {d.id for d in fleet[:3]}
    assert viewer_api.get(f"{URL}/{uuid.uuid4()}").status_code == 404


def test_the_list_filters_by_type_and_status_in_bounded_queries(operator_api, viewer_api, fleet, django_assert_max_num_queries):
    for _ in range(5):
        post(operator_api, {"type": "ping", "target": {"all": True}})
    reboot = post(operator_api, {"type": "reboot", "target": {"all": True}}).json()["id"]
    operator_api.post(f"{URL}/{reboot}/cancel")
    with django_assert_max_num_queries(6):
        response = viewer_api.get(URL)
    assert response.json()["count"] == 6
    assert [c["id"] for c in viewer_api.get(URL, {"type": "reboot"}).json()["results"]] == [reboot]
    assert [c["id"] for c in viewer_api.get(URL, {"status": "cancelled"}).json()["results"]] == [reboot]
    assert viewer_api.get(URL, {"status": "active"}).json()["count"] == 5
    assert viewer_api.get(URL, {"device": fleet[3].id}).json()["count"] == 6


def test_cancel_ends_unstarted_deliveries_and_is_operator_only(operator_api, viewer_api, fleet):
    command_id = post(operator_api, {"type": "ping", "target": {"group": "lobby"}}).json()["id"]
    fleet[0].report(command_id, "running")
    assert viewer_api.post(f"{URL}/{command_id}/cancel").status_code == 403
    response = operator_api.post(f"{URL}/{command_id}/cancel")
    assert response.status_code == 200
    assert response.json()["counters"]["cancelled"] == 2 and response.json()["counters"]["running"] == 1
    assert response.json()["cancelled_at"]
    assert AuditEvent.objects.filter(action="command.cancel").count() == 1


def test_api_paths_work_without_a_trailing_slash_and_with_one(viewer_api, operator_api, fleet):
    command_id = post(operator_api, {"type": "ping", "target": {"all": True}}).json()["id"]
    for path in (URL, URL + "/", f"{URL}/{command_id}", f"{URL}/{command_id}/"):
        assert viewer_api.get(path).status_code == 200, path


def test_the_api_schema_documents_the_commands_endpoints(viewer_api):
    schema = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/commands", "/api/v1/command-presets", "/api/v1/shell-allowlist", "/api/v1/wifi-configs"):
        assert path in schema


@pytest.mark.slow
def test_a_command_to_20000_devices_is_issued_in_bulk(operator_api, django_assert_max_num_queries):
    from devices.models import Device, DeviceStatus

    devices = Device.objects.bulk_create(
        [Device(hardware_id=f"BULK-{i:06d}", fcm_token="") for i in range(20_000)], batch_size=5000
    )
    DeviceStatus.objects.bulk_create([DeviceStatus(device=d) for d in devices], batch_size=5000)
    started = time.perf_counter()
    with django_assert_max_num_queries(60):
        response = post(operator_api, {"type": "ping", "target": {"all": True}})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201 and response.json()["target_count"] == 20_000
    assert Delivery.objects.filter(command_id=response.json()["id"]).count() == 20_000
    assert Device.objects.filter(next_seq=2).count() == 20_000
    print(f"\n20,000-device command issued in {elapsed:.2f} s")  # a figure; bench/ judges speed
