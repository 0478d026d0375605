"""The result write-behind cannot be poisoned and loses nothing (issue 14, finding 1): a queued
report PostgreSQL refuses is set aside as a dead letter while the rest of its batch lands, the
sweeps that flush first (cancel, expiry) keep working, and a flusher that dies mid-flush leaves
its claim for a later flush, which writes it once."""

import json

import pytest
import time_machine
from django.db import InterfaceError
from django.utils import timezone

from commands import results, services
from commands.models import Delivery
from commands.tests.test_dispatch import issue, push
from commands.tests.test_pushed_answer import clean_phone
from commands.tests.test_result_writebehind import queued
from mdm import deadletters, metrics, redis_client

pytestmark = pytest.mark.django_db


class Killed(BaseException):
    """What the process sees of a SIGKILL: nothing after this point runs."""


def fleet(standin, n=3, **issue_kwargs):
    """n devices with one pushed command, each device's marker holding its answer (so its
    report is queued), their tokens cached."""
    from devices import tokens

    devices = [clean_phone(standin) for _ in range(n)]
    command = issue(devices, **issue_kwargs)
    push(command)
    for d in devices:
        tokens.verify(d.token)
    return devices, command


def states(command) -> dict:
    return dict(Delivery.objects.filter(command=command).values_list("device_id", "state"))


def inject(device, command, **fields):
    """A report queued without passing the edge (an older server, a hand edit, a bug)."""
    entry = {"c": str(command.pk), "s": "succeeded", "at": int(timezone.now().timestamp() * 1e6), **fields}
    redis_client.client().rpush(results.key(), f"{device.id}|{json.dumps(entry)}")


def test_finding_1_a_nul_and_a_lone_surrogate_in_queued_results_are_set_aside_and_results_keep_landing(fcm_standin):
    devices, command = fleet(fcm_standin, n=4)
    good, *poisoned = devices
    assert good.report(str(command.pk), "succeeded", exit_code=0, output="fine").status_code == 200
    inject(poisoned[0], command, output="a\x00b")
    inject(poisoned[1], command, error="lone \ud800")
    inject(poisoned[2], command, reason="n\x00")
    before = metrics.DEAD_LETTERS.labels("result")._value.get()
    assert results.flush_all() == 1
    assert states(command)[good.device.pk] == "succeeded"
    assert Delivery.objects.get(command=command, device=good.device).output == "fine"
    letters = deadletters.entries()
    assert sorted(x["device_id"] for x in letters) == sorted(d.id for d in poisoned)
    assert {x["kind"] for x in letters} == {"result"} and all(x["reason"] for x in letters)
    assert metrics.DEAD_LETTERS.labels("result")._value.get() == before + 3
    assert queued() == 0 and results.claims() == {}


def test_finding_1_cancel_and_expiry_keep_working_with_poison_in_the_queue(fcm_standin):
    devices, command = fleet(fcm_standin, n=2, expires_in_s=60)
    inject(devices[0], command, output="a\x00b")
    assert services.cancel_command(actor=None, command=command) >= 1  # it flushes first
    assert states(command)[devices[0].device.pk] == "cancelled"
    other_devices, other = fleet(fcm_standin, n=1, expires_in_s=60)
    inject(other_devices[0], other, error="\udfff")
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=120)):
        assert services.expire_deliveries() >= 1
    assert states(other)[other_devices[0].device.pk] == "expired"
    assert deadletters.count() == 2 and queued() == 0


MALFORMED = {
    "not-json": "{nope",
    "unknown-status": json.dumps({"c": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "s": "exploded", "at": 1}),
    "bad-command-id": json.dumps({"c": "not-a-uuid", "s": "succeeded", "at": 1}),
    "exit-code-out-of-range": json.dumps({"c": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "s": "failed", "at": 1, "exit_code": 2**40}),
}


@pytest.mark.parametrize("entry", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_queued_report_is_set_aside_and_its_batch_lands(fcm_standin, entry):
    (device, other), command = fleet(fcm_standin, n=2)
    other.report(str(command.pk), "failed", exit_code=3)
    redis_client.client().rpush(results.key(), f"{device.id}|{entry}")
    assert results.flush_all() == 1
    assert states(command)[other.device.pk] == "failed"
    assert deadletters.count() == 1 and queued() == 0


def test_a_database_outage_puts_the_claim_back_at_once_and_sets_nothing_aside(fcm_standin, monkeypatch):
    devices, command = fleet(fcm_standin, n=2)
    for d in devices:
        d.report(str(command.pk), "succeeded", exit_code=0)

    def away(chosen):
        raise InterfaceError("connection already closed")

    monkeypatch.setattr(results, "_apply", away)
    with pytest.raises(InterfaceError):
        results.flush()
    monkeypatch.undo()
    assert queued() == 2 and results.claims() == {} and deadletters.count() == 0
    assert results.flush() == 2


def test_a_result_flusher_killed_before_its_commit_loses_nothing(fcm_standin, monkeypatch):
    devices, command = fleet(fcm_standin)
    for d in devices:
        d.report(str(command.pk), "succeeded", exit_code=0)

    def killed(claim):
        raise Killed

    monkeypatch.setattr(results, "write", killed)
    with pytest.raises(Killed):
        results.flush()
    monkeypatch.undo()
    assert queued() == 0 and len(results.claims()) == 1
    assert results.flush() == 0  # not stale yet
    assert set(states(command).values()) == {"sent"}
    assert results.flush(stale_s=0) == 3
    assert set(states(command).values()) == {"succeeded"} and results.claims() == {}


def test_a_result_flusher_killed_after_its_commit_moves_and_counts_each_delivery_once(fcm_standin, monkeypatch,
                                                                                      capture_on_commit):
    devices, command = fleet(fcm_standin)
    for d in devices:
        d.report(str(command.pk), "failed", exit_code=1)

    def killed(claim, letters=()):
        raise Killed

    monkeypatch.setattr(results.QUEUE, "release", killed)
    counted = metrics.DELIVERIES.labels("failed")._value.get()
    with pytest.raises(Killed), capture_on_commit(execute=True):  # the commit's callbacks run
        results.flush()
    monkeypatch.undo()
    assert set(states(command).values()) == {"failed"}
    with capture_on_commit(execute=True):
        assert results.flush(stale_s=0) == 0  # written again: moves nothing
    assert set(states(command).values()) == {"failed"} and results.claims() == {} and queued() == 0
    rows = Delivery.objects.filter(command=command)
    assert all(r.exit_code == 1 and r.finished_at is not None for r in rows)
    assert metrics.DELIVERIES.labels("failed")._value.get() - counted == 3


def test_a_claim_put_back_keeps_its_place_ahead_of_later_reports(fcm_standin, monkeypatch):
    """The first final wins: a later report of the same delivery must not overtake the claimed one."""
    (device,), command = fleet(fcm_standin, n=1)
    device.report(str(command.pk), "failed", exit_code=7)

    def killed(claim):
        raise Killed

    monkeypatch.setattr(results, "write", killed)
    with pytest.raises(Killed):
        results.flush()
    monkeypatch.undo()
    inject(device, command, s="succeeded", exit_code=0)  # a later final, behind the claim
    results.flush(stale_s=0)
    row = Delivery.objects.get(command=command)
    assert (row.state, row.exit_code) == ("failed", 7)
