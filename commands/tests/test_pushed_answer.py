"""A pushed command awaiting its result is served again by every heartbeat (PROTOCOL.md: pending =
queued or sent). The push leaves that answer in the device's Redis marker (commands.markers), so
those heartbeats need no query; anything that changes the device's pending set first drops it."""

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from commands import markers, services
from commands.services import reports
from commands.tests.test_dispatch import issue, phones, push, received
from devices import tokens

pytestmark = pytest.mark.django_db


def beat(device, kids=None):
    return services.heartbeat_answer(device_id=device.id, kids=device.kids if kids is None else kids)


def clean_phone(standin):
    [device] = phones(standin)
    assert beat(device)["commands"] == []  # the check leaves the "nothing pending" marker
    assert markers.clean_kids(device.id) == "k1"
    return device


def from_database(device) -> dict:
    markers.dirty_now([device.id])
    return beat(device)


def test_a_heartbeat_after_the_push_serves_the_pushed_envelope_without_a_query(fcm_standin, django_assert_num_queries):
    device = clean_phone(fcm_standin)
    command = issue([device], type="launch_app", params={"package": "com.example.kiosk"})
    push(command)
    [message] = received(fcm_standin, device)
    with django_assert_num_queries(0):
        answer = beat(device)
    assert answer == {"commands": [json.loads(message["data"]["envelope"])], "more_commands": False, "cancelled": []}
    assert device.verify(answer["commands"][0], server_now=int(time.time()))["id"] == str(command.pk)
    assert from_database(device) == answer  # the very answer the database gives


def test_the_result_replaces_the_cached_answer_with_clean(fcm_standin, django_assert_num_queries):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    assert markers.parse_pushed(markers.read(device.id)) is not None
    assert device.report(str(command.pk), "succeeded", exit_code=0).status_code == 200
    assert markers.clean_kids(device.id) == "k1"
    with django_assert_num_queries(0):
        assert beat(device)["commands"] == []


def test_a_received_report_ends_pending_too(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    assert device.report(str(command.pk), "received").status_code == 200
    assert beat(device)["commands"] == []


def test_a_heartbeat_check_between_issue_and_push_leaves_no_cached_answer(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    markers.begin_check(device.id)  # a heartbeat is looking in the database meanwhile
    push(command)
    assert received(fcm_standin, device)  # pushed all the same
    assert markers.parse_pushed(markers.read(device.id)) is None


def test_a_device_not_known_clean_at_issue_gets_no_cached_answer(fcm_standin, django_assert_max_num_queries):
    [device] = phones(fcm_standin)  # never checked: no marker
    command = issue([device])
    push(command)
    assert markers.parse_pushed(markers.read(device.id)) is None
    answer = beat(device)
    assert [device.verify(e, server_now=int(time.time()))["id"] for e in answer["commands"]] == [str(command.pk)]


def test_a_second_command_after_the_push_is_served_beside_the_first(fcm_standin):
    device = clean_phone(fcm_standin)
    first = issue([device])
    push(first)
    second = issue([device], type="lock")
    ids = [device.verify(e, server_now=int(time.time()))["id"] for e in beat(device)["commands"]]
    assert ids == [str(first.pk), str(second.pk)]


def test_a_second_command_issued_before_the_first_is_pushed_is_not_lost(fcm_standin):
    device = clean_phone(fcm_standin)
    first = issue([device])
    second = issue([device], type="lock")
    push(first)
    push(second)
    ids = [device.verify(e, server_now=int(time.time()))["id"] for e in beat(device)["commands"]]
    assert ids == [str(first.pk), str(second.pk)]


def test_a_cancellation_after_the_push_reaches_the_device(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    services.cancel_command(actor=None, command=command)
    answer = beat(device)
    assert answer["commands"] == [] and answer["cancelled"] == [str(command.pk)]


def test_the_cached_answer_is_never_served_past_expiry(fcm_standin):
    device = clean_phone(fcm_standin)
    push(issue([device], expires_in_s=60))
    assert beat(device)["commands"]
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert beat(device)["commands"] == []


def test_other_kids_bypass_the_cached_answer_and_get_the_keys(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    answer = beat(device, kids=["k9"])
    assert "command_keys" in answer
    assert json.loads(answer["commands"][0]["payload"])["id"] == str(command.pk)


def test_a_key_change_after_the_push_drops_the_cached_answer(fcm_standin):
    device = clean_phone(fcm_standin)
    push(issue([device]))
    services.start_key_rotation(device_ids=[device.device.pk], lead=timedelta(days=1))
    assert markers.parse_pushed(markers.read(device.id)) is None
    assert "command_keys" in beat(device)  # the new key rides along, as before


def test_a_secret_command_rides_a_sync_tickle_and_is_never_cached(fcm_standin):
    device = clean_phone(fcm_standin)
    push(issue([device], type="wifi_configure", params={"ssid": "Depot", "security": "wpa2", "password": "hunter22hunter"}))
    assert received(fcm_standin, device)[0]["data"] == {"kind": "sync"}
    assert markers.parse_pushed(markers.read(device.id)) is None


def test_the_heartbeat_endpoint_serves_the_cached_answer(fcm_standin):
    """Through the API (the write-behind Lua call reads the marker in its one round trip)."""
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    response = device.client().post("/api/v1/device/heartbeat", data=json.dumps({"kids": device.kids}),
                                    content_type="application/json")
    assert response.status_code == 200
    [envelope] = response.json()["commands"]
    assert device.verify(envelope, server_now=int(time.time()))["id"] == str(command.pk)


def test_a_heartbeat_that_served_exactly_one_command_answers_the_next_from_redis(device, django_assert_num_queries):
    beat(device)
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}).command
    first = beat(device)  # from the database: the queued delivery becomes sent
    assert markers.parse_pushed(markers.read(device.id)).command_id == str(command.pk)
    with django_assert_num_queries(0):
        assert beat(device) == first


def test_a_secret_command_served_by_a_heartbeat_is_never_kept_in_redis(device):
    beat(device)
    services.issue_command(actor=None, type="wifi_configure", params={"ssid": "Depot", "security": "wpa2", "password": "hunter22hunter"},
                           target={"device_ids": [device.id]})
    assert "hunter22hunter" in json.dumps(beat(device))  # the device gets it (signed, in the answer)
    assert markers.read(device.id) is None or b"hunter22" not in markers.read(device.id)
    assert markers.parse_pushed(markers.read(device.id)) is None


@pytest.mark.django_db(transaction=True)
def test_the_result_of_the_only_pending_command_leaves_the_device_clean(fcm_standin, django_assert_num_queries):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    assert device.report(str(command.pk), "succeeded", exit_code=0).status_code == 200
    assert markers.clean_kids(device.id) == "k1"
    with django_assert_num_queries(0):
        assert beat(device)["commands"] == []


@pytest.mark.django_db(transaction=True)
def test_a_result_that_beats_its_push_record_leaves_the_device_clean_and_nothing_cached(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    assert device.report(str(command.pk), "succeeded", exit_code=0).status_code == 200  # before the push
    assert markers.clean_kids(device.id) == "k1"
    push(command)
    assert markers.clean_kids(device.id) == "k1"
    assert beat(device)["commands"] == []


@pytest.mark.django_db(transaction=True)
def test_a_result_while_another_command_waits_does_not_hide_it(fcm_standin):
    device = clean_phone(fcm_standin)
    first = issue([device])
    second = issue([device], type="lock")
    push(first)
    assert device.report(str(first.pk), "succeeded", exit_code=0).status_code == 200
    assert markers.clean_kids(device.id) is None
    ids = [device.verify(e, server_now=int(time.time()))["id"] for e in beat(device)["commands"]]
    assert ids == [str(second.pk)]


@pytest.mark.django_db(transaction=True)
def test_the_later_reports_of_a_command_leave_the_device_clean(fcm_standin):
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    for status in ("received", "running", "succeeded"):
        assert device.report(str(command.pk), status).status_code == 200
        assert markers.clean_kids(device.id) == "k1", status


def test_a_report_while_a_heartbeat_check_is_in_flight_makes_that_check_leave_nothing(device):
    beat(device)
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}).command
    token = markers.begin_check(device.id)  # a heartbeat is reading the delivery as pending
    markers.settle_reported(device.id, command.pk)  # the device's report lands meanwhile
    markers.finish_pushed(device.id, token, "k1", int(time.time()) + 600, command.pk, "{}")
    assert markers.read(device.id) is None  # no stale answer for a finished command


def test_a_heartbeat_check_that_starts_after_the_report_but_before_its_update_commits_caches_nothing(device):
    # The report settles the marker before its UPDATE (one round trip fewer): a check in that gap
    # still reads the delivery as pending, and its answer must not be kept (the guard key).
    beat(device)
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}).command
    markers.settle_reported(device.id, command.pk)
    token = markers.begin_check(device.id)
    markers.finish_pushed(device.id, token, "k1", int(time.time()) + 600, command.pk, "{}")
    assert markers.parse_pushed(markers.read(device.id)) is None
    other = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}).command
    token = markers.begin_check(device.id)
    markers.finish_pushed(device.id, token, "k1", int(time.time()) + 600, other.pk, "{}")
    assert markers.parse_pushed(markers.read(device.id)).command_id == str(other.pk)  # the guard is per command


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_between_the_report_and_its_commit_leaves_the_next_heartbeats_correct(fcm_standin, monkeypatch, settings):
    settings.RESULT_WRITE_BEHIND = False  # the report applied at once (commands.results queues it otherwise)
    device = clean_phone(fcm_standin)
    command = issue([device])
    push(command)
    record = services.record_result
    answers = []

    def heartbeat_in_the_gap(**kwargs):  # runs after the report's Redis call, before its UPDATE
        markers.dirty_now([device.id])  # say a key change dropped the marker meanwhile
        answers.append(beat(device))
        return record(**kwargs)

    monkeypatch.setattr(reports, "record_result", heartbeat_in_the_gap)  # report_result's own call
    tokens.verify(device.token)
    assert device.report(str(command.pk), "succeeded", exit_code=0).status_code == 200
    assert [device.verify(e, server_now=int(time.time()))["id"] for e in answers[0]["commands"]] == [str(command.pk)]
    assert markers.parse_pushed(markers.read(device.id)) is None  # the stale answer was not kept
    assert beat(device)["commands"] == []
    assert markers.clean_kids(device.id) == "k1"


@pytest.mark.django_db(transaction=True)
def test_an_enrolled_device_starts_clean_so_its_first_heartbeat_asks_no_command_query(admin_user, django_assert_num_queries):
    from enrollment import services as enrollment

    raw = enrollment.create_enrollment_key(actor=admin_user, name="first-beat").raw
    enrolled = enrollment.enroll_device(raw_key=raw, hardware_id="CLEAN-1", info={"model": "m"})
    device_id, kids = enrolled.answer["device_id"], [k["kid"] for k in enrolled.answer["command_keys"]]
    assert markers.clean_kids(device_id) == markers.kids_key(kids)
    with django_assert_num_queries(0):
        assert services.heartbeat_answer(device_id=device_id, kids=kids)["commands"] == []
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device_id]}).command
    served = services.heartbeat_answer(device_id=device_id, kids=kids)["commands"]
    assert [json.loads(e["payload"])["id"] for e in served] == [str(command.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_reenrolled_device_starts_clean_with_its_new_key_only(admin_user):
    from enrollment import services as enrollment

    raw = enrollment.create_enrollment_key(actor=admin_user, name="again").raw
    first = enrollment.enroll_device(raw_key=raw, hardware_id="CLEAN-2", info={"model": "m"})
    services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [first.answer["device_id"]]})
    assert tokens.verify(first.answer["device_token"])  # used: what follows is a re-enrollment, not a retry
    again = enrollment.enroll_device(raw_key=raw, hardware_id="CLEAN-2", info={"model": "m"},
                                     presented_token=first.answer["device_token"])
    kids = [k["kid"] for k in again.answer["command_keys"]]
    assert again.outcome == "reenrolled" and kids == ["k2"]
    assert markers.clean_kids(again.answer["device_id"]) == markers.kids_key(kids)
    assert services.heartbeat_answer(device_id=again.answer["device_id"], kids=kids)["commands"] == []  # cancelled: reenrolled


def test_a_fleet_is_marked_in_calls_of_chunk_keys_and_every_chunk_is_written(fcm_standin, monkeypatch,
                                                                             django_assert_num_queries):
    """Fleet-wide marker writes go in calls of markers.CHUNK keys (one long Lua call holds every
    heartbeat in flight behind it): every device of every chunk is marked issued, then gets the
    cached answer, and a delete reaches every chunk too."""
    devices = phones(fcm_standin, 5)
    for device in devices:
        assert beat(device)["commands"] == []  # clean
    monkeypatch.setattr(markers, "CHUNK", 2)
    from mdm import redis_client

    client = redis_client.client()
    calls = []
    real_eval, real_delete = type(client).eval, type(client).delete
    monkeypatch.setattr(type(client), "eval",
                        lambda self, script, n, *a: calls.append((script, n)) or real_eval(self, script, n, *a))
    command = issue(devices, type="launch_app", params={"package": "com.example.kiosk"})
    # The mark before the commit (this transaction never commits, so the one after it does not run).
    assert calls == [(markers._ISSUED, 2), (markers._ISSUED, 2), (markers._ISSUED, 1)]
    calls.clear()
    push(command)
    assert [n for script, n in calls if script == markers._PUSHED] == [2, 2, 1]
    for device in devices:
        [message] = received(fcm_standin, device)
        with django_assert_num_queries(0):
            assert beat(device)["commands"] == [json.loads(message["data"]["envelope"])]
    monkeypatch.setattr(type(client), "delete",
                        lambda self, *keys: calls.append(("delete", len(keys))) or real_delete(self, *keys))
    calls.clear()
    markers.dirty_now([d.id for d in devices])
    assert calls == [("delete", 2)] * 5  # marker and keyset of 5 devices: 10 keys
    assert all(markers.read(d.id) is None for d in devices)
