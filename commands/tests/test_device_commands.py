"""The device side: pulling pending envelopes, reporting results, heartbeat answers."""

import json
import time
import uuid

import pytest
import time_machine
from django.test import Client

from commands import markers, services
from commands.models import Delivery
from commands.tests.conftest import make_device
from devices import tokens

pytestmark = pytest.mark.django_db


def issue(*devices, type="ping", params=None, **kwargs):
    return services.issue_command(
        actor=None, type=type, params=params or {}, target={"device_ids": [d.id for d in devices]}, **kwargs
    ).command


def test_a_pull_returns_pending_envelopes_lowest_seq_first_signed_for_the_device(device):
    first, second = issue(device), issue(device, type="lock")
    answer = device.pull()
    assert answer["more"] is False
    payloads = [device.verify(e, server_now=int(time.time())) for e in answer["commands"]]
    assert [p["id"] for p in payloads] == [str(first.pk), str(second.pk)]
    assert payloads[0]["seq"] < payloads[1]["seq"]
    assert {p["device_id"] for p in payloads} == {device.id}


def test_a_pull_marks_queued_deliveries_sent_by_pull_and_serves_them_again_until_reported(device):
    command = issue(device)
    device.pull()
    delivery = Delivery.objects.get(command=command)
    assert (delivery.state, delivery.channel) == ("sent", "pull")
    assert len(device.pull()["commands"]) == 1
    device.report(str(command.pk), "received")
    assert device.pull()["commands"] == []


def test_the_pull_limit_defaults_to_25_and_caps_at_100(device):
    for _ in range(30):
        issue(device)
    assert len(device.pull()["commands"]) == 25
    answer = device.pull(limit=5)
    assert len(answer["commands"]) == 5 and answer["more"] is True
    assert len(device.pull(limit=500)["commands"]) == 30


def test_a_bad_limit_is_a_400_in_the_protocol_shape(device):
    response = device.client().get("/api/v1/device/commands?limit=abc")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "limit" in response.json()["fields"]


def test_the_pull_path_works_with_and_without_a_trailing_slash(device):
    issue(device)
    assert device.client().get("/api/v1/device/commands/").status_code == 200
    assert device.client().get("/api/v1/device/commands").status_code == 200


def test_an_expired_command_is_never_served(device):
    issue(device, expires_in_s=60)
    with time_machine.travel(time.time() + 61):
        assert device.pull()["commands"] == []


def test_results_move_forward_only_and_the_first_final_wins(device):
    command = issue(device)
    cid = str(command.pk)
    assert device.report(cid, "running").json()["status"] == "running"
    response = device.report(cid, "received")
    assert response.status_code == 200 and response.json()["status"] == "running"
    assert device.report(cid, "succeeded", exit_code=0, output="ok").json()["status"] == "succeeded"
    assert device.report(cid, "failed", exit_code=1).json()["status"] == "succeeded"
    delivery = Delivery.objects.get(command=command)
    assert (delivery.exit_code, delivery.output, delivery.running_at is not None) == (0, "ok", True)
    assert delivery.finished_at is not None


def test_a_duplicate_final_report_is_answered_200_with_the_unchanged_state(device):
    command = issue(device)
    for _ in range(3):
        response = device.report(str(command.pk), "succeeded", exit_code=0)
        assert response.status_code == 200 and response.json()["status"] == "succeeded"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "done"},
        {"status": "queued"},
        {"status": "cancelled"},
        {"status": "rejected"},
        {"status": "rejected", "reason": "because"},
        {"status": "succeeded", "exit_code": "zero"},
        {"status": "succeeded", "output": ["x"]},
    ],
)
def test_an_invalid_report_is_a_400_whatever_the_state(device, body):
    command = issue(device)
    device.report(str(command.pk), "succeeded")
    response = device.client().post(
        f"/api/v1/device/commands/{command.pk}/result", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["fields"]


def test_a_rejection_carries_its_reason(device):
    command = issue(device)
    assert device.report(str(command.pk), "rejected", reason="not_allowed").json()["status"] == "rejected"
    assert Delivery.objects.get(command=command).reason == "not_allowed"


def test_a_body_that_is_not_a_json_object_is_a_400(device):
    command = issue(device)
    for raw in (b"[1]", b"{nope", b""):
        response = device.client().post(f"/api/v1/device/commands/{command.pk}/result", data=raw, content_type="application/json")
        assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_body_over_1_mib_is_a_413(device):
    command = issue(device)
    body = json.dumps({"status": "succeeded", "output": "x" * (1024 * 1024 + 10)})
    response = device.client().post(f"/api/v1/device/commands/{command.pk}/result", data=body, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_output_over_64_kib_is_truncated_and_flagged(device):
    command = issue(device)
    device.report(str(command.pk), "succeeded", output="é" * 40_000)
    delivery = Delivery.objects.get(command=command)
    assert delivery.output_truncated is True
    assert len(delivery.output.encode()) <= 64 * 1024


def test_another_devices_command_is_a_404(sim_device):
    mine, other = sim_device(), sim_device()
    command = issue(other)
    response = mine.report(str(command.pk), "succeeded")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert mine.report(str(uuid.uuid4()), "succeeded").status_code == 404
    assert mine.report("not-a-uuid", "succeeded").status_code == 404
    assert Delivery.objects.get(command=command).state == "queued"


def test_device_endpoints_refuse_a_missing_or_wrong_token(device):
    command = issue(device)
    for client in (Client(), Client(HTTP_AUTHORIZATION="Device nope.nope"), Client(HTTP_AUTHORIZATION="Bearer x")):
        assert client.get("/api/v1/device/commands").status_code == 401
        response = client.post(f"/api/v1/device/commands/{command.pk}/result", data="{}", content_type="application/json")
        assert response.status_code == 401 and response.json()["code"] == "token_invalid"
        assert client.get(f"/api/v1/device/commands/{command.pk}/result").status_code == 401  # not 405
        response = client.post(f"/api/v1/device/commands/{command.pk}/result", data=json.dumps({"status": "succeeded"}), content_type="application/json")
        assert response.status_code == 401
    assert Delivery.objects.get(command=command).state == "queued"


def test_a_report_whose_token_is_cached_is_one_query_and_settles_the_marker(device, django_assert_num_queries):
    command = issue(device)
    assert tokens.verify(device.token) == str(device.id)  # cached, as after the device's first request
    with django_assert_num_queries(1):  # the UPDATE; the token check and the settle are one Redis call
        response = device.report(str(command.pk), "received")
    assert response.status_code == 200 and response.json()["status"] == "received"
    assert markers.read(device.id) is None  # not known clean before: the next heartbeat asks the database
    assert services.heartbeat_answer(device_id=device.id, kids=device.kids)["commands"] == []


def test_a_report_with_a_cached_token_id_but_the_wrong_secret_is_401_and_changes_nothing(device):
    command = issue(device)
    tokens.verify(device.token)
    token_id = device.token.partition(".")[0]
    marker_before = markers.read(device.id)
    forged = Client(HTTP_AUTHORIZATION=f"Device {token_id}.not-the-secret")
    response = forged.post(f"/api/v1/device/commands/{command.pk}/result", data=json.dumps({"status": "succeeded"}), content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"
    assert Delivery.objects.get(command=command).state == "queued"
    assert markers.read(device.id) == marker_before


def test_a_report_after_the_token_left_the_cache_takes_the_slow_check_once(device):
    command = issue(device)
    tokens._forget(device.token.partition(".")[0])
    assert device.report(str(command.pk), "received").status_code == 200  # bcrypt, then cached
    assert device.report(str(command.pk), "succeeded").json()["status"] == "succeeded"
    assert Delivery.objects.get(command=command).state == "succeeded"


def test_device_endpoints_answer_json_to_a_wrong_method(device):
    response = device.client().post("/api/v1/device/commands", data="{}", content_type="application/json")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    response = device.client().get(f"/api/v1/device/commands/{uuid.uuid4()}/result", HTTP_ACCEPT="text/html")
    assert response.status_code == 405 and response["Content-Type"] == "application/json"


def test_a_heartbeat_answer_carries_pending_commands_and_more_commands(device):
    for _ in range(27):
        issue(device)
    answer = services.heartbeat_answer(device_id=device.id, kids=device.kids)
    assert len(answer["commands"]) == 25 and answer["more_commands"] is True
    assert "command_keys" not in answer


def test_a_heartbeat_answer_hands_out_keys_when_the_kids_are_absent_invalid_or_different(device):
    for kids in (None, "k1", [1], ["k99"], []):
        answer = services.heartbeat_answer(device_id=device.id, kids=kids)
        assert answer["command_keys"][0]["kid"] == device.kids[0]


def test_cancelled_ids_ride_back_once_in_the_heartbeat(device):
    command = issue(device)
    device.pull()
    services.cancel_command(actor=None, command=command)
    answer = services.heartbeat_answer(device_id=device.id, kids=device.kids)
    assert answer["cancelled"] == [str(command.pk)] and answer["commands"] == []
    assert services.heartbeat_answer(device_id=device.id, kids=device.kids)["cancelled"] == []
    assert device.report(str(command.pk), "succeeded").json()["status"] == "cancelled"


def test_re_enrollment_cancels_every_non_final_delivery_and_changes_the_keys(device):
    from commands.device_hooks import keys_on_enroll

    first, second = issue(device), issue(device)
    device.report(str(first.pk), "succeeded")
    old = device.keys
    device.take_keys(keys_on_enroll(device=device.device, reenrolled=True))
    assert device.keys.keys() != old.keys() and set(device.keys.values()).isdisjoint(old.values())
    states = dict(Delivery.objects.values_list("command_id", "state"))
    assert states == {first.pk: "succeeded", second.pk: "cancelled"}
    assert Delivery.objects.get(command=second).reason == "reenrolled"


def test_deleting_a_device_cancels_its_deliveries_and_its_purge_keeps_their_results_without_output(device):
    from commands.device_hooks import on_device_deleted, purge_device
    from commands.models import DeviceKey

    done = [issue(device) for _ in range(3)]
    for command in done:
        device.report(str(command.pk), "succeeded", exit_code=0, output="serial 1234")
    pending = issue(device)
    on_device_deleted(device_id=device.id)
    states = dict(Delivery.objects.values_list("command_id", "state"))
    assert states == {**{c.pk: "succeeded" for c in done}, pending.pk: "cancelled"}
    assert Delivery.objects.get(command=pending).reason == "deleted"
    assert purge_device(device_id=device.id, batch_size=2) == 2  # outputs blanked, two at a time
    assert purge_device(device_id=device.id, batch_size=2) == 1
    assert purge_device(device_id=device.id, batch_size=2) >= 1  # the key rows
    assert purge_device(device_id=device.id, batch_size=2) == 0
    assert not DeviceKey.objects.filter(device_id=device.id).exists()
    kept = list(Delivery.objects.values_list("state", "exit_code", "output"))
    assert sorted(kept, key=str) == sorted([("succeeded", 0, "")] * 3 + [("cancelled", None, "")], key=str)


def test_a_device_with_no_keys_yet_gets_some_on_its_first_heartbeat(db):
    bare = make_device(enroll_keys=False)
    answer = services.heartbeat_answer(device_id=bare.id, kids=None)
    bare.take_keys(answer["command_keys"])
    issue(bare)
    envelope = services.heartbeat_answer(device_id=bare.id, kids=bare.kids)["commands"][0]
    assert bare.verify(envelope, server_now=int(time.time()))["type"] == "ping"


@pytest.mark.parametrize("error", ["database", "redis"])
def test_a_pull_during_database_or_redis_trouble_is_503_busy_not_a_500(device, monkeypatch, error):
    # Found by the PostgreSQL-restart fault test: the pull answered Django's HTML 500 page.
    import redis
    from django.db import OperationalError

    issue(device)

    def down(**kwargs):
        raise OperationalError("terminating connection due to administrator command") if error == "database" else redis.ConnectionError("gone")

    monkeypatch.setattr(services, "pull_commands", down)
    response = device.client().get("/api/v1/device/commands")
    assert response.status_code == 503
    assert response.json()["code"] == "busy" and int(response["Retry-After"]) > 0
    monkeypatch.undo()
    assert len(device.pull()["commands"]) == 1  # nothing was taken
