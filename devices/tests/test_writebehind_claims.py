"""Claimed, not popped (issue 14): a heartbeat flusher that dies anywhere between taking its batch
and releasing it loses nothing, and nothing is counted twice when a later flush writes its batch
again. The crash is simulated in-process by an exception no handler catches (a SIGKILL runs no
cleanup either); the real process kills are tests of their own."""

import json
import threading
import time

import pytest
from django.db import connection, connections

from devices import services, writebehind
from devices.models import DeviceStatus, FlushClaim, HeartbeatSample
from devices.tests.factories import enroll_for_test
from mdm import deadletters


class Killed(BaseException):
    """What the process sees of a SIGKILL: nothing after this point runs."""


def post(client, enrolled, **fields):
    response = client.post("/api/v1/device/heartbeat", data=json.dumps(fields), content_type="application/json", **enrolled.auth)
    assert response.status_code == 200
    return response


def fleet(client, n=3, bad=(2, 0, 5)):
    devices = [enroll_for_test() for _ in range(n)]
    for i, device in enumerate(devices):
        post(client, device, battery_pct=60 + i, bad_envelopes=bad[i])
    return devices


def state(devices):
    rows = DeviceStatus.objects.filter(device__in=[d.device for d in devices]).order_by("battery_pct")
    return [(r.battery_pct, r.bad_envelopes_total, r.last_seen is not None) for r in rows]


def samples(devices) -> int:
    return HeartbeatSample.objects.filter(device_id__in=[d.device.pk for d in devices]).count()


def kill_at(monkeypatch, name):
    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(writebehind, name, killed)


@pytest.mark.django_db
def test_a_flusher_killed_before_its_commit_loses_nothing(client, monkeypatch):
    devices = fleet(client)
    kill_at(monkeypatch, "write")
    with pytest.raises(Killed):
        services.flush_heartbeats()
    monkeypatch.undo()
    assert len(writebehind.claims()) == 1  # still held by the dead flusher
    assert writebehind.backlog()["dirty_devices"] == 0
    assert services.flush_heartbeats() == 0  # not stale yet: a live flusher might still write it
    assert state(devices) == [(None, 0, False)] * 3
    writebehind.flush(stale_s=0)  # the claim is stale now: put back (the ledger says: never applied)
    services.flush_heartbeats()
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]
    assert samples(devices) == 3 and writebehind.claims() == {}
    assert FlushClaim.objects.filter(state=FlushClaim.State.ABANDONED).count() == 1


@pytest.mark.django_db
def test_a_flusher_killed_after_its_commit_counts_bad_envelopes_exactly_once(client, monkeypatch):
    devices = fleet(client)
    kill_at(monkeypatch, "release")
    with pytest.raises(Killed):
        services.flush_heartbeats()
    monkeypatch.undo()
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]  # committed
    assert len(writebehind.claims()) == 1  # but never released
    writebehind.flush(stale_s=0)
    services.flush_heartbeats()
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]  # not 4 and 10
    assert samples(devices) == 3 and writebehind.claims() == {}
    assert writebehind.backlog()["dirty_devices"] == 0


@pytest.mark.django_db
def test_a_claim_without_bad_counts_is_written_again_harmlessly(client, monkeypatch):
    devices = fleet(client, bad=(0, 0, 0))
    kill_at(monkeypatch, "release")
    with pytest.raises(Killed):
        services.flush_heartbeats()
    monkeypatch.undo()
    assert writebehind.flush(stale_s=0) == 3  # put back by the take itself, no ledger needed
    assert state(devices) == [(60, 0, True), (61, 0, True), (62, 0, True)]
    assert samples(devices) == 3 and FlushClaim.objects.count() == 0


@pytest.mark.django_db
def test_heartbeats_arriving_while_a_claim_is_held_are_kept_apart_and_both_land(client, monkeypatch):
    devices = fleet(client)
    kill_at(monkeypatch, "write")
    with pytest.raises(Killed):
        services.flush_heartbeats()
    monkeypatch.undo()
    post(client, devices[0], battery_pct=30, bad_envelopes=1)  # after the claim: a new entry
    services.flush_heartbeats()
    assert DeviceStatus.objects.get(device=devices[0].device).bad_envelopes_total == 1
    writebehind.flush(stale_s=0)
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=devices[0].device)
    assert (status.battery_pct, status.bad_envelopes_total) == (30, 3)  # the newest state, both counts


@pytest.mark.django_db
def test_a_flusher_whose_claim_was_given_up_writes_nothing(client):
    """The slow flusher: it took its batch, a later flush found the claim stale and put it back;
    when the slow one finally writes, the ledger stops it (else the counts would double)."""
    devices = fleet(client)
    claim, _ = writebehind.take()
    raw_states = writebehind._client()[0].mget([writebehind.state_key(i) for i in claim.device_ids])
    assert writebehind.requeue_stale(stale_s=0) == 1
    with pytest.raises(writebehind._TakenOver):
        writebehind.write(claim, raw_states)
    services.flush_heartbeats()
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]


@pytest.mark.django_db(transaction=True)
def test_a_stale_check_waits_for_a_flusher_still_committing_and_then_drops_its_claim(client, monkeypatch):
    """Two real PostgreSQL sessions: the check's ledger row waits on the flusher's uncommitted one,
    sees `applied` once the flusher commits, and puts nothing back."""
    devices = fleet(client)
    writing, go_on = threading.Event(), threading.Event()
    real = writebehind._write_states

    def slow(*args, **kwargs):
        writing.set()  # the ledger row is written, not committed
        assert go_on.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(writebehind, "_write_states", slow)
    outcome = {}

    def run(name, job):
        try:
            outcome[name] = job()
        finally:
            connections.close_all()

    flusher = threading.Thread(target=run, args=("flush", services.flush_heartbeats))
    flusher.start()
    assert writing.wait(20)
    checker = threading.Thread(target=run, args=("check", lambda: writebehind.requeue_stale(stale_s=0)))
    checker.start()
    deadline = time.monotonic() + 20
    while not _someone_waits_for_a_lock():
        assert time.monotonic() < deadline, "the stale check never waited on the flusher's ledger row"
        time.sleep(0.05)
    go_on.set()
    flusher.join(20), checker.join(20)
    assert outcome == {"flush": 3, "check": 0}
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]
    services.flush_heartbeats()
    assert state(devices) == [(60, 2, True), (61, 0, True), (62, 5, True)]
    assert writebehind.claims() == {} and deadletters.count() == 0


def _someone_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
def test_the_ledger_keeps_a_week(client):
    fleet(client)
    FlushClaim.objects.create(claim="old", state=FlushClaim.State.APPLIED)
    FlushClaim.objects.filter(claim="old").update(at="2000-01-01T00:00:00Z")
    services.flush_heartbeats()  # a claim with bad counts writes its row and prunes the old ones
    assert list(FlushClaim.objects.values_list("state", flat=True)) == [FlushClaim.State.APPLIED]
    assert not FlushClaim.objects.filter(claim="old").exists()
