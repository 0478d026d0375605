"""Push dispatch through firebase-admin to the FCM stand-in (in process): message shape, the
envelope/sync choice, TTL, and the mapping of FCM's error answers."""

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from commands import services
from commands.services import push as push_service
from commands.models import Delivery
from commands.tests.conftest import make_device
from devices.models import Device

pytestmark = pytest.mark.django_db


def issue(devices, type="ping", params=None, **kwargs):
    command = services.issue_command(
        actor=None, type=type, params=params or {}, target={"device_ids": [d.id for d in devices]}, **kwargs
    ).command
    # The ids of the dispatch tasks the commit would start (each claimed its first batch at issue).
    command.task_ids = sorted(set(Delivery.objects.filter(command=command, push_status="claimed").values_list("push_claim", flat=True)))
    return command


def push(command):
    """What the dispatch tasks started on commit do (the test's transaction never commits): each
    pushes the batch claimed for it at issue, then whatever else waits."""
    report = services.PushReport()
    for claim in getattr(command, "task_ids", None) or ["test-claim"]:
        part = services.push_command(command_id=command.pk, claim=claim)
        for name in ("pushed", "failed", "retry", "skipped"):
            setattr(report, name, getattr(report, name) + getattr(part, name))
        report.retry_in_s = part.retry_in_s if report.retry_in_s is None else report.retry_in_s
    return report


def phones(standin, n=1):
    devices = [make_device(fcm_token=f"fcm-token-{i}-{time.monotonic_ns()}") for i in range(n)]
    standin.register([d.device.fcm_token for d in devices])
    return devices


def received(standin, device) -> list[dict]:
    return [m["message"] for m in standin.messages(token=device.device.fcm_token)["messages"]]


def test_a_push_carries_the_signed_envelope_as_a_high_priority_data_message(fcm_standin):
    devices = phones(fcm_standin, 3)
    command = issue(devices, expires_in_s=600)
    report = push(command)
    assert report.pushed == 3
    for device in devices:
        [message] = received(fcm_standin, device)
        assert set(message) >= {"token", "data", "android"} and "notification" not in message
        assert message["android"]["priority"] == "high"
        assert 590 <= float(message["android"]["ttl"][:-1]) <= 600
        assert message["data"]["kind"] == "command"
        assert all(isinstance(v, str) for v in message["data"].values())
        payload = device.verify(json.loads(message["data"]["envelope"]), server_now=int(time.time()))
        assert payload["id"] == str(command.pk) and payload["device_id"] == device.id
    assert set(Delivery.objects.values_list("state", "channel", "push_status")) == {("sent", "push", "pushed")}


def test_the_ttl_is_capped_at_28_days(fcm_standin):
    [device] = phones(fcm_standin)
    push(issue([device], expires_in_s=30 * 86400))
    assert received(fcm_standin, device)[0]["android"]["ttl"] == "2419200s"


def test_nothing_is_sent_when_the_command_has_expired(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device], expires_in_s=5)
    with time_machine.travel(timezone.now() + timedelta(seconds=6)):
        report = push(command)
    assert report.pushed == 0 and report.skipped == 1
    assert received(fcm_standin, device) == []


def test_a_wifi_configure_envelope_never_appears_in_an_fcm_message(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device], type="wifi_configure", params={"ssid": "Lobby", "security": "wpa2", "password": "s3cret-pass!", "hidden": False})
    push(command)
    messages = received(fcm_standin, device)
    assert messages == [{"token": device.device.fcm_token, "data": {"kind": "sync"},
                         "android": {**messages[0]["android"], "collapse_key": "sync"}}]
    everything = json.dumps(fcm_standin.messages())
    assert "s3cret-pass!" not in everything and "Lobby" not in everything and "envelope" not in everything
    # The device gets it by pulling, the secret intact inside the signed envelope.
    assert Delivery.objects.get(command=command).state == "queued"
    envelope = device.pull()["commands"][0]
    assert device.verify(envelope, server_now=int(time.time()))["params"]["password"] == "s3cret-pass!"


def test_an_envelope_over_3500_bytes_becomes_a_sync_tickle(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device], type="shell", params={"argv": ["getprop"] + ["x" * 1000] * 4})
    push(command)
    [message] = received(fcm_standin, device)
    assert message["data"] == {"kind": "sync"} and message["android"]["collapse_key"] == "sync"
    assert Delivery.objects.get(command=command).state == "queued"


def test_unregistered_clears_the_token_and_leaves_the_delivery_to_the_pull(fcm_standin):
    device = make_device(fcm_token="dead-token")
    command = issue([device])
    report = push(command)
    assert report.failed == 1
    assert Device.objects.get(pk=device.id).fcm_token == ""
    delivery = Delivery.objects.get(command=command)
    assert (delivery.state, delivery.push_status) == ("queued", "failed")
    assert len(device.pull()["commands"]) == 1


@pytest.mark.parametrize("error", ["QUOTA_EXCEEDED", "UNAVAILABLE"])
def test_quota_exceeded_and_unavailable_retry_with_backoff(fcm_standin, error):
    [device] = phones(fcm_standin)
    fcm_standin.fail([device.device.fcm_token], error=error)
    command = issue([device])
    report = push(command)
    delivery = Delivery.objects.get(command=command)
    assert report.retry == 1 and report.retry_in_s is not None and report.retry_in_s >= 1
    assert (delivery.state, delivery.push_status, delivery.attempts) == ("queued", "retry", 1)
    assert delivery.push_after > timezone.now()
    # Too early: nothing to claim. After the backoff, with FCM healthy again, it goes.
    assert push(command).pushed == 0
    fcm_standin.fail([device.device.fcm_token], error=None)
    with time_machine.travel(delivery.push_after + timedelta(seconds=1)):
        assert push(command).pushed == 1
    assert Delivery.objects.get(command=command).state == "sent"
    assert Device.objects.get(pk=device.id).fcm_token != ""


def test_a_push_that_keeps_failing_gives_up_and_leaves_the_pull(fcm_standin, monkeypatch):
    [device] = phones(fcm_standin)
    fcm_standin.fail([device.device.fcm_token], error="QUOTA_EXCEEDED")
    monkeypatch.setattr(push_service, "MAX_PUSH_ATTEMPTS", 2)
    command = issue([device])
    push(command)
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        push(command)
    delivery = Delivery.objects.get(command=command)
    assert (delivery.state, delivery.push_status, delivery.attempts) == ("queued", "failed", 2)


def test_invalid_argument_fails_the_delivery_with_the_reason(fcm_standin):
    [device] = phones(fcm_standin)
    fcm_standin.fail([device.device.fcm_token], error="INVALID_ARGUMENT")
    command = issue([device])
    push(command)
    delivery = Delivery.objects.get(command=command)
    assert (delivery.state, delivery.reason) == ("failed", "fcm_invalid_argument")
    assert "INVALID_ARGUMENT" in delivery.error


def test_with_fcm_disabled_deliveries_simply_wait_for_the_pull(db, settings):
    settings.FCM_ENABLED = False
    device = make_device(fcm_token="some-token")
    command = issue([device])
    assert Delivery.objects.get(command=command).push_status == "skipped"
    assert len(device.pull()["commands"]) == 1


def test_a_device_without_a_token_is_left_to_the_pull(fcm_standin):
    device = make_device(fcm_token="")
    command = issue([device])
    assert Delivery.objects.get(command=command).push_status == "skipped"
    assert push(command).pushed == 0


def test_a_pull_that_overtakes_a_push_is_not_moved_back(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device])
    device.report(str(command.pk), "running")
    # Claimable still? No: only queued deliveries are pushed.
    assert push(command).pushed == 0
    assert Delivery.objects.get(command=command).state == "running"


def test_a_killed_dispatchers_claims_are_taken_over_once_stale(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device])
    Delivery.objects.filter(command=command).update(push_status="claimed", push_claim="dead-worker", push_claimed_at=timezone.now())
    assert push(command).pushed == 0
    assert services.stalled_push_commands(now=timezone.now() + timedelta(minutes=3)) == [command.pk]
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert push(command).pushed == 1


def test_the_expiry_sweep_ends_pending_deliveries_past_expiry(device):
    command = issue([device], expires_in_s=60)
    other = issue([device], expires_in_s=3600)
    device.report(str(other.pk), "running")
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        assert services.expire_deliveries() == 1
    assert Delivery.objects.get(command=command).state == "expired"
    with time_machine.travel(timezone.now() + timedelta(days=1, hours=2)):
        assert services.expire_deliveries() == 1  # the stuck running one, a day after expiry
    assert Delivery.objects.get(command=other).state == "expired"


def test_issue_claims_each_dispatch_tasks_first_batch_and_starts_exactly_those_tasks(fcm_standin, monkeypatch, django_capture_on_commit_callbacks):
    from collections import Counter

    from commands import tasks

    monkeypatch.setattr(tasks, "PUSH_BATCH", 2)
    devices = phones(fcm_standin, 5)
    started = []
    monkeypatch.setattr(tasks.dispatch_command, "apply_async", lambda args, task_id: started.append((args, task_id)))
    with django_capture_on_commit_callbacks(execute=True):
        command = issue(devices)
    claims = Counter(Delivery.objects.filter(command=command, push_status="claimed").values_list("push_claim", flat=True))
    assert sorted(claims.values()) == [1, 2, 2]  # 5 waiting, 2 per batch: three tasks, each its first batch
    assert sorted(task_id for _, task_id in started) == sorted(claims) and {args for args, _ in started} == {(str(command.pk),)}
    reports = [services.push_command(command_id=command.pk, claim=task_id, batch_size=2) for _, task_id in started]
    assert [r.pushed for r in reports] == [claims[task_id] for _, task_id in started]
    assert all(len(received(fcm_standin, d)) == 1 for d in devices)
    assert set(Delivery.objects.filter(command=command).values_list("push_status", "push_claim")) == {("pushed", "")}


def test_a_claimed_delivery_a_heartbeat_served_first_is_released_not_pushed(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device])
    assert len(device.pull()["commands"]) == 1  # the pull path serves it before the dispatch task runs
    assert push(command).skipped == 1 and received(fcm_standin, device) == []
    assert Delivery.objects.filter(command=command).values_list("state", "channel", "push_status", "push_claim").get() == ("sent", "pull", "skipped", "")


def test_a_retry_that_falls_due_while_the_task_still_runs_is_pushed_by_it(fcm_standin, monkeypatch):
    devices = phones(fcm_standin, 2)
    from mdm import fcm

    fcm_standin.fail([devices[0].device.fcm_token], error="QUOTA_EXCEEDED", times=1)
    monkeypatch.setattr(fcm, "RETRY_AFTER_INLINE_MAX_S", 0)  # the 429 comes back to dispatch
    monkeypatch.setattr(push_service, "push_backoff_s", lambda attempt, retry_after=None: 0.0)  # due at once
    command = issue(devices)
    [task_id] = command.task_ids
    report = services.push_command(command_id=command.pk, claim=task_id, batch_size=1)
    assert (report.pushed, report.retry) == (2, 1)  # the failed one came back due and went out
    assert set(Delivery.objects.filter(command=command).values_list("state", "push_status", "push_claim")) == {("sent", "pushed", "")}


def test_stale_claims_made_at_issue_are_taken_over_through_the_locking_claim(fcm_standin):
    [device] = phones(fcm_standin)
    command = issue([device])
    [task_id] = command.task_ids
    later = timezone.now() + timedelta(minutes=3)
    assert push_service._own_claims(command.pk, task_id, later, services.CLAIM_STALE, 500) == []
    with time_machine.travel(later):  # its worker was backlogged: a resumed task takes it, once
        assert services.push_command(command_id=command.pk, claim="resumed").pushed == 1
        assert services.push_command(command_id=command.pk, claim=task_id).pushed == 0
    assert len(received(fcm_standin, device)) == 1


def test_a_message_that_cannot_be_built_is_retried_and_the_rest_still_recorded(fcm_standin, monkeypatch):
    from commands import envelopes

    devices = phones(fcm_standin, 3)
    broken = devices[1].id
    build = envelopes.build

    def build_or_fail(**fields):
        if str(fields["device_id"]) == broken:
            raise RuntimeError("key store unavailable")
        return build(**fields)

    monkeypatch.setattr(envelopes, "build", build_or_fail)
    command = issue(devices)
    report = push(command)
    assert (report.pushed, report.retry) == (2, 1)
    states = dict(Delivery.objects.filter(command=command).values_list("device_id", "push_status"))
    assert states[devices[1].device.pk] == "retry" and {states[d.device.pk] for d in (devices[0], devices[2])} == {"pushed"}


def test_a_command_cancelled_while_its_push_is_in_flight_is_announced_to_the_device(fcm_standin, monkeypatch):
    from mdm import fcm

    [device] = phones(fcm_standin)
    command = issue([device])
    send_each = fcm.send_each

    def send_then_cancel(messages):
        results = send_each(messages)
        services.cancel_command(actor=None, command=command)  # queued when read: cancelled quietly
        return results

    monkeypatch.setattr(fcm, "send_each", send_then_cancel)
    assert push(command).pushed == 1 and len(received(fcm_standin, device)) == 1
    delivery = Delivery.objects.get(command=command)
    assert (delivery.state, delivery.notify_cancel) == ("cancelled", True)  # the device holds it: tell it
    answer = device.client().post("/api/v1/device/heartbeat", data=json.dumps({"kids": device.kids}), content_type="application/json").json()
    assert answer["cancelled"] == [str(command.pk)]


def test_deliveries_a_heartbeat_serves_while_their_batch_is_sent_are_not_pushed_again(fcm_standin, monkeypatch):
    from mdm import fcm

    devices = phones(fcm_standin, fcm.STREAM_CHUNK + 10)
    command = issue(devices)
    real_send_each = fcm.send_each

    def heartbeats_after_the_first_message(messages):
        first = next(iter(messages))
        for d in devices:  # every device heartbeats meanwhile: its delivery is served by the pull path
            services.heartbeat_answer(device_id=d.id, kids=d.kids)
        return real_send_each([first, *messages])

    monkeypatch.setattr(fcm, "send_each", heartbeats_after_the_first_message)
    report = push(command)
    # The first chunk was read just before sending; every later chunk is read again and skipped.
    assert report.pushed == fcm.STREAM_CHUNK and report.skipped == 10
    not_pushed = [d for d in devices if not received(fcm_standin, d)]
    assert len(not_pushed) == 10
    rows = Delivery.objects.filter(command=command, device__in=[d.device for d in not_pushed])
    assert set(rows.values_list("state", "channel", "push_status", "push_claim")) == {("sent", "pull", "skipped", "")}
