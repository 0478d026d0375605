"""Bulk delete: immediate for the admin (gone from lists, token dead, hardware id retired);
history, inventory and deliveries purged later in batches by a worker."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from devices import hooks, services
from devices.models import Device, HeartbeatSample, InstalledApp
from devices.tasks import purge_device
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _with_history(device, n=12):
    now = timezone.now()
    HeartbeatSample.objects.bulk_create(
        [HeartbeatSample(device=device, at=now - timedelta(minutes=i), battery_pct=50) for i in range(n)]
    )
    InstalledApp.objects.bulk_create([InstalledApp(device=device, package=f"p{i}") for i in range(5)])


def test_bulk_delete_kills_the_token_on_its_next_request(client, enrolled_device, admin_user):
    auth = enrolled_device.auth
    assert client.post("/api/v1/device/heartbeat", data="{}", content_type="application/json", **auth).status_code == 200
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    response = client.post("/api/v1/device/heartbeat", data="{}", content_type="application/json", **auth)
    assert response.status_code == 401


def test_deleted_devices_leave_the_lists_at_once(admin_api, enrolled_device, other_enrolled_device, admin_user):
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    ids = [d["device_id"] for d in admin_api.get("/api/v1/devices").json()["results"]]
    assert ids == [str(other_enrolled_device.device.pk)]


def test_the_purge_removes_history_inventory_and_deliveries_in_batches(enrolled_device, other_enrolled_device, admin_user, monkeypatch, settings):
    purged = []
    monkeypatch.setitem(hooks.receivers, "device_purge", [lambda **kw: purged.append(kw) and 0 or 0])
    _with_history(enrolled_device.device)
    _with_history(other_enrolled_device.device)
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)  # run it by hand below
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    device_id = str(enrolled_device.device.pk)
    assert services.purge_device_data(device_id=device_id, batch_size=5) == 5
    while services.purge_device_data(device_id=device_id, batch_size=5):
        pass
    assert not HeartbeatSample.objects.filter(device_id=device_id).exists()
    assert not InstalledApp.objects.filter(device_id=device_id).exists()
    assert purged and purged[0]["device_id"] == device_id
    assert Device.objects.get(pk=device_id).purged_at is not None
    assert HeartbeatSample.objects.filter(device=other_enrolled_device.device).count() == 12


def test_the_purge_task_runs_to_the_end(enrolled_device, admin_user, monkeypatch):
    _with_history(enrolled_device.device, n=30)
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    monkeypatch.undo()
    assert purge_device.apply(args=[str(enrolled_device.device.pk)]).get() == 35
    assert Device.objects.get(pk=enrolled_device.device.pk).purged_at is not None


def test_a_device_restored_before_its_purge_keeps_its_history(enrolled_device, admin_user, monkeypatch):
    _with_history(enrolled_device.device)
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    services.restore_device(actor=admin_user, device=enrolled_device.device)
    assert services.purge_device_data(device_id=str(enrolled_device.device.pk)) == 0
    assert HeartbeatSample.objects.filter(device=enrolled_device.device).count() == 12


def test_deletion_cancels_deliveries_and_is_audited(enrolled_device, admin_user, monkeypatch):
    called = []
    monkeypatch.setitem(hooks.receivers, "device_deleted", [lambda **kw: called.append(kw["device_id"])])
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    assert called == [str(enrolled_device.device.pk)]
    assert AuditEvent.objects.filter(action="device.delete", target_id=str(enrolled_device.device.pk)).exists()


def test_the_purge_is_enqueued_on_commit(enrolled_device, admin_user, monkeypatch):
    queued = []
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda device_id: queued.append(device_id))
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    assert queued == [str(enrolled_device.device.pk)]


def test_deleting_twice_is_harmless(enrolled_device, admin_user, monkeypatch):
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    assert services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    assert services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk]) == []


def test_heartbeats_of_other_devices_go_on_during_a_purge(client, enrolled_device, other_enrolled_device, admin_user, monkeypatch):
    """The purge deletes only the deleted device's rows, in short statements: a heartbeat of
    another device in the middle of it is served."""
    _with_history(enrolled_device.device, n=20)
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)
    services.delete_devices(actor=admin_user, device_ids=[enrolled_device.device.pk])
    services.purge_device_data(device_id=str(enrolled_device.device.pk), batch_size=5)
    response = client.post("/api/v1/device/heartbeat", data=json.dumps({"battery_pct": 3}), content_type="application/json", **other_enrolled_device.auth)
    assert response.status_code == 200
