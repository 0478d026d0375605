"""Policy status reports, write-behind (commands.policies.reports): a report is one Redis call for
the web, and the 1 s flush writes the newest report per device in one statement, losing none when
a flusher dies and setting aside only what PostgreSQL refuses."""

import json
from types import SimpleNamespace
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from commands.policies import reports
from commands.policies import services as policies
from commands.tests.conftest import make_device
from devices.models import Device, DevicePolicyState
from mdm import deadletters, redis_client
from mdm.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Killed(BaseException):
    """A flusher's process dying mid-flush."""


@pytest.fixture
def policy(admin_user):
    return policies.create_policy(actor=admin_user, name="Kiosk", items={"kiosk": {"package": "com.example.kiosk"}})


def assigned(admin_user, policy, n=1):
    sims = [make_device() for _ in range(n)]
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [s.id for s in sims]})
    policy.refresh_from_db()
    return sims


def put(sim, version, state="applied"):
    return Client(HTTP_AUTHORIZATION=f"Device {sim.token}").put(
        "/api/v1/device/policy/status", data=json.dumps({"version": version, "items": {"kiosk": {"state": state}}}),
        content_type="application/json")


def state(sim) -> DevicePolicyState:
    return DevicePolicyState.objects.get(device_id=sim.id)


def queued() -> int:
    return redis_client.client().llen(reports.QUEUE.key())


def test_a_report_is_queued_and_the_flush_makes_the_device_compliant(admin_user, policy):
    (sim,) = assigned(admin_user, policy)
    assert put(sim, policy.version).status_code == 204
    assert queued() == 1 and state(sim).applied_version is None  # not yet in PostgreSQL
    assert reports.flush() == 1
    s = state(sim)
    assert (s.applied_version, s.all_applied, s.compliant) == (policy.version, True, True)
    assert queued() == 0 and reports.QUEUE.claims() == {}


def test_the_newest_report_wins_whatever_order_the_flushes_see_them_in(admin_user, policy):
    (sim,) = assigned(admin_user, policy)
    version = policy.version
    policies.record_policy_status(device_id=sim.id, version=version, items={"kiosk": {"state": "failed"}}, now=T0)
    policies.record_policy_status(device_id=sim.id, version=version, items={"kiosk": {"state": "applied"}},
                                  now=T0 + timedelta(seconds=2))
    reports.flush()  # one batch: the newer of the two
    assert state(sim).items == {"kiosk": {"state": "applied"}} and state(sim).reported_at == T0 + timedelta(seconds=2)
    # an older report flushed later (a claim put back) changes nothing
    policies.record_policy_status(device_id=sim.id, version=version, items={"kiosk": {"state": "failed"}},
                                  now=T0 + timedelta(seconds=1))
    assert reports.flush() == 0
    assert state(sim).items == {"kiosk": {"state": "applied"}} and state(sim).all_applied


def test_a_device_deleted_before_the_flush_loses_its_report_and_stops_nobody(admin_user, policy):
    gone, kept = assigned(admin_user, policy, n=2)
    put(gone, policy.version)
    put(kept, policy.version)
    Device.objects.filter(pk=gone.id).delete()
    assert reports.flush() == 1
    assert state(kept).compliant and not DevicePolicyState.objects.filter(device_id=gone.id).exists()
    assert deadletters.count() == 0


def test_a_malformed_entry_is_set_aside_and_the_rest_lands(admin_user, policy):
    (sim,) = assigned(admin_user, policy)
    redis_client.client().rpush(reports.QUEUE.key(), f"{sim.id}|{json.dumps({'v': -1, 'i': {}, 'a': True, 'at': 1})}")
    redis_client.client().rpush(reports.QUEUE.key(), f"not-a-uuid|{json.dumps({'v': 1, 'i': {}, 'a': True, 'at': 1})}")
    put(sim, policy.version)
    assert reports.flush() == 1
    assert state(sim).compliant
    letters = deadletters.entries()
    assert deadletters.count() == 2 and {x["kind"] for x in letters} == {"policy_report"}


def test_a_flusher_killed_before_its_commit_loses_nothing(admin_user, policy, monkeypatch):
    sims = assigned(admin_user, policy, n=3)
    for sim in sims:
        put(sim, policy.version)

    def killed(entries):
        raise Killed

    monkeypatch.setattr(reports, "write", killed)
    with pytest.raises(Killed):
        reports.flush()
    monkeypatch.undo()
    assert queued() == 0 and len(reports.QUEUE.claims()) == 1
    assert reports.flush() == 0  # not stale yet: nothing taken twice
    assert reports.flush(stale_s=0) == 3
    assert all(state(s).compliant for s in sims) and reports.QUEUE.claims() == {}


def test_a_report_too_large_to_queue_or_without_redis_is_written_at_once(admin_user, policy, monkeypatch):
    big, lonely = assigned(admin_user, policy, n=2)
    items = {f"item{i}": {"state": "failed", "reason": "x" * 400} for i in range(30)}
    policies.record_policy_status(device_id=big.id, version=policy.version, items=items)
    assert queued() == 0 and state(big).items == items

    class Refusing:
        def rpush(self, *args):
            raise ConnectionError("redis away")

    # the queue's Redis only (the token still verifies through the real one)
    monkeypatch.setattr(reports, "redis_client", SimpleNamespace(client=Refusing))
    assert put(lonely, policy.version).status_code == 204
    monkeypatch.undo()
    assert state(lonely).compliant and queued() == 0


def test_the_flush_runs_every_second_in_beat_and_the_embedded_scheduler():
    entry = app.conf.beat_schedule["commands-flush-policy-reports"]
    assert entry["task"] == "commands.tasks.flush_policy_reports" and entry["schedule"].total_seconds() == 1
    assert "commands.tasks.flush_policy_reports" in app.tasks
