"""The result write-behind (commands.results): a report of the command whose push answer the
device's marker holds is answered from Redis and reaches PostgreSQL in the next flush; every
other report is applied at once, as before."""

import json

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from commands import markers, results, services
from commands.models import Delivery
from commands.tests.test_dispatch import issue, phones, push
from commands.tests.test_pushed_answer import clean_phone
from devices import tokens

pytestmark = pytest.mark.django_db


def pushed_phone(standin, **issue_kwargs):
    """A device whose marker holds the pushed command's answer, its token cached (as after its
    first request): the state a fan-out leaves."""
    device = clean_phone(standin)
    command = issue([device], **issue_kwargs)
    push(command)
    assert markers.parse_pushed(markers.read(device.id)).command_id == str(command.pk)
    tokens.verify(device.token)
    return device, command


def delivery(command) -> Delivery:
    return Delivery.objects.get(command=command)


def queued() -> int:
    from mdm import redis_client

    return redis_client.client().llen(results.key())


def test_a_report_of_the_pushed_command_is_answered_from_redis_and_written_by_the_flush(fcm_standin, django_assert_num_queries):
    device, command = pushed_phone(fcm_standin)
    with django_assert_num_queries(0):
        response = device.report(str(command.pk), "succeeded", exit_code=0, output="ok")
    assert response.status_code == 200 and response.json() == {"id": str(command.pk), "status": "succeeded"}
    assert delivery(command).state == "sent" and queued() == 1
    assert markers.clean_kids(device.id) == "k1"  # the device has nothing pending any more
    before_flush = timezone.now()
    assert results.flush() == 1
    row = delivery(command)
    assert (row.state, row.exit_code, row.output, row.notify_cancel) == ("succeeded", 0, "ok", False)
    assert row.finished_at <= before_flush  # the report's own time, not the flush's
    assert queued() == 0 and results.flush() == 0


def test_the_first_final_wins_while_it_waits_for_the_flush(fcm_standin, django_assert_num_queries):
    device, command = pushed_phone(fcm_standin)
    assert device.report(str(command.pk), "failed", exit_code=3).json()["status"] == "failed"
    with django_assert_num_queries(0):
        assert device.report(str(command.pk), "succeeded", exit_code=0).json()["status"] == "failed"
    results.flush()
    assert (delivery(command).state, delivery(command).exit_code) == ("failed", 3)


def test_a_queued_received_does_not_undo_a_final_applied_before_the_flush(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    assert device.report(str(command.pk), "received").json()["status"] == "received"
    assert queued() == 1
    assert device.report(str(command.pk), "succeeded", exit_code=0).json()["status"] == "succeeded"  # applied at once
    assert delivery(command).state == "succeeded"
    assert results.flush() == 0
    assert delivery(command).state == "succeeded"


def test_a_queued_received_then_running_lands_as_running_with_both_times(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    device.report(str(command.pk), "received")
    device.report(str(command.pk), "running")  # the marker is clean now: applied at once
    results.flush()
    row = delivery(command)
    assert row.state == "running" and row.running_at is not None


def test_an_expired_cached_answer_is_not_a_proof_of_pending(fcm_standin):
    device, command = pushed_phone(fcm_standin, expires_in_s=60)
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=120)):
        services.expire_deliveries()
        response = device.report(str(command.pk), "succeeded", exit_code=0)
    assert response.json()["status"] == "expired" and queued() == 0


def test_a_cancellation_lands_after_the_reports_already_answered(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    assert device.report(str(command.pk), "succeeded", exit_code=0).json()["status"] == "succeeded"
    services.cancel_command(actor=None, command=command)  # flushes first
    assert delivery(command).state == "succeeded" and queued() == 0


def test_the_expiry_sweep_flushes_first(fcm_standin):
    device, command = pushed_phone(fcm_standin, expires_in_s=60)
    device.report(str(command.pk), "succeeded", exit_code=0)
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=120)):
        services.expire_deliveries()
    assert delivery(command).state == "succeeded"


def test_another_devices_token_never_reaches_the_queue(fcm_standin, sim_device):
    device, command = pushed_phone(fcm_standin)
    other = sim_device()
    tokens.verify(other.token)
    response = other.report(str(command.pk), "succeeded", exit_code=0)
    assert response.status_code == 404 and queued() == 0
    assert markers.parse_pushed(markers.read(device.id)).command_id == str(command.pk)  # the owner's answer stays


def test_a_wrong_secret_is_401_and_queues_nothing(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    token_id = device.token.partition(".")[0]
    forged = Client(HTTP_AUTHORIZATION=f"Device {token_id}.not-the-secret")
    response = forged.post(f"/api/v1/device/commands/{command.pk}/result", data=json.dumps({"status": "succeeded"}),
                           content_type="application/json")
    assert response.status_code == 401 and queued() == 0
    assert markers.parse_pushed(markers.read(device.id)) is not None


def test_bad_input_is_a_400_before_anything_is_queued(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    response = device.report(str(command.pk), "rejected")  # a rejection needs its reason
    assert response.status_code == 400 and response.json()["code"] == "invalid" and queued() == 0


def test_a_large_report_is_applied_at_once_so_the_queue_stays_small(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    device.report(str(command.pk), "failed", output="é" * 40_000, error="x" * 4096, exit_code=1)
    assert queued() == 0
    row = delivery(command)
    assert row.output_truncated is True and len(row.output.encode()) <= services.MAX_OUTPUT_BYTES
    assert len(row.error) == services.MAX_ERROR_CHARS


def test_a_queued_output_keeps_its_text_exactly(fcm_standin):
    device, command = pushed_phone(fcm_standin)
    device.report(str(command.pk), "succeeded", exit_code=0, output="line 1\nlígne 2 | 🚀", error="warn")
    assert queued() == 1
    results.flush()
    row = delivery(command)
    assert (row.output, row.output_truncated, row.error) == ("line 1\nlígne 2 | 🚀", False, "warn")


def test_a_failed_write_puts_the_batch_back_in_order(fcm_standin, monkeypatch):
    first_device, first = pushed_phone(fcm_standin)
    second_device, second = pushed_phone(fcm_standin)
    first_device.report(str(first.pk), "succeeded", exit_code=0)
    second_device.report(str(second.pk), "failed", exit_code=2)

    def broken(chosen):
        raise RuntimeError("database gone")

    monkeypatch.setattr(results, "_apply", broken)
    with pytest.raises(RuntimeError):
        results.flush()
    assert queued() == 2
    monkeypatch.undo()
    assert results.flush() == 2
    assert (delivery(first).state, delivery(second).state) == ("succeeded", "failed")


def test_one_flush_keeps_each_deliverys_first_final_and_moves_the_rest(sim_device):
    devices = [sim_device() for _ in range(3)]
    command = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [d.id for d in devices]}).command
    now = timezone.now()
    from mdm import redis_client

    def put(device, status, **extra):
        redis_client.client().rpush(results.key(), f"{device.id}|{results.entry(command_id=command.pk, status=status, now=now, **extra)}")

    put(devices[0], "received"), put(devices[0], "failed", exit_code=1), put(devices[0], "succeeded", exit_code=0)
    put(devices[1], "running"), put(devices[1], "received")
    put(devices[2], "succeeded", exit_code=0)
    assert results.flush() == 3
    states = dict(Delivery.objects.filter(command=command).values_list("device_id", "state"))
    assert [states[d.device.id] for d in devices] == ["failed", "running", "succeeded"]


def test_without_the_write_behind_every_report_is_applied_at_once(fcm_standin, settings):
    settings.RESULT_WRITE_BEHIND = False
    device, command = pushed_phone(fcm_standin)
    assert device.report(str(command.pk), "succeeded", exit_code=0).json()["status"] == "succeeded"
    assert delivery(command).state == "succeeded" and queued() == 0
    assert markers.clean_kids(device.id) == "k1"


def test_the_flush_runs_every_second_in_beat():
    from mdm.celery import app

    entry = app.conf.beat_schedule["commands-flush-results"]
    assert entry["task"] == "commands.tasks.flush_results" and entry["schedule"].total_seconds() == 1
    from commands import tasks

    assert tasks.flush_results() == 0


def test_a_burst_of_reports_costs_one_statement_per_flush(fcm_standin, django_assert_num_queries):
    devices = phones(fcm_standin, 20)
    for d in devices:
        services.heartbeat_answer(device_id=d.id, kids=d.kids)
        tokens.verify(d.token)
    command = issue(devices)
    push(command)
    for d in devices:
        assert d.report(str(command.pk), "succeeded", exit_code=0).status_code == 200
    with django_assert_num_queries(3):  # savepoint, the UPDATE, release
        assert results.flush() == 20
    assert set(Delivery.objects.filter(command=command).values_list("state", flat=True)) == {"succeeded"}


def test_the_sweeps_flush_never_takes_reports_inside_a_transaction_that_may_roll_back(fcm_standin):
    from django.db import transaction

    device, command = pushed_phone(fcm_standin)
    device.report(str(command.pk), "succeeded", exit_code=0)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert results.flush_all() == 0  # inside the caller's transaction: left to the beat's flush
        raise RuntimeError("rolled back")
    assert queued() == 1
    assert results.flush_all() == 1 and delivery(command).state == "succeeded"


def test_redis_trouble_is_a_503_busy_with_retry_after_and_changes_nothing(fcm_standin, monkeypatch):
    import redis

    device, command = pushed_phone(fcm_standin)

    def down(**kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(markers, "report", down)
    response = device.report(str(command.pk), "succeeded", exit_code=0)
    assert response.status_code == 503 and response.json()["code"] == "busy" and response["Retry-After"]
    monkeypatch.undo()
    assert delivery(command).state == "sent" and queued() == 0
    assert device.report(str(command.pk), "succeeded", exit_code=0).json()["status"] == "succeeded"  # the retry lands
