"""A command's history survives the deletion of its devices: after 2 of 30 devices are deleted and
purged, a command that 30 of 30 ran still reads 30 devices, 30 ok, and lists the two as deleted
devices (by hardware id), without what they printed."""

import pytest

from commands import services
from commands.models import Delivery
from commands.tests.conftest import make_device
from devices import services as device_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_purge_task(monkeypatch):
    monkeypatch.setattr("devices.tasks.purge_device.delay", lambda *a: None)  # run by hand below


def delete_and_purge(admin_user, devices) -> None:
    device_services.delete_devices(actor=admin_user, device_ids=[d.device.pk for d in devices])
    for d in devices:
        while device_services.purge_device_data(device_id=str(d.device.pk), batch_size=5):
            pass
        d.device.refresh_from_db()
        assert d.device.purged_at is not None


def test_a_command_that_all_30_devices_ran_still_reads_30_ok_after_2_are_deleted(
    console_for, admin_user, viewer_user, no_purge_task, django_capture_on_commit_callbacks
):
    fleet = [make_device(hardware_id=f"KIOSK-{i:02d}") for i in range(30)]
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    for d in fleet:
        d.report(str(command.pk), "succeeded", exit_code=0, output=f"pong from {d.device.hardware_id}")
    delete_and_purge(admin_user, fleet[:2])

    client = console_for(viewer_user)
    history = client.get("/commands/").content.decode()
    assert "30 devices" in history and "30 ok · 0 failed" in history and ">finished<" in history
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert 'data-counter="total">30<' in page and 'data-counter="succeeded">30<' in page
    assert "30 of 30 succeeded" in page
    assert page.count("deleted device</span>") == 2
    assert 'deleted device</span> <span class="hwid">KIOSK-00</span>' in page
    assert 'deleted device</span> <span class="hwid">KIOSK-01</span>' in page
    assert "2 of its devices were deleted since" in page
    # What the deleted devices printed went with their purge; the rest is kept.
    assert "pong from KIOSK-00" not in page and "pong from KIOSK-02" in page
    kept = Delivery.objects.filter(command=command, device__in=[d.device for d in fleet[:2]])
    assert list(kept.values_list("state", "exit_code", "output")) == [("succeeded", 0, "")] * 2


def test_a_device_deleted_before_it_ran_the_command_shows_as_cancelled_and_deleted(console_for, admin_user, viewer_user, no_purge_task):
    fleet = [make_device(hardware_id=f"TILL-{i}") for i in range(3)]
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    for d in fleet[1:]:
        d.report(str(command.pk), "succeeded", exit_code=0)
    delete_and_purge(admin_user, fleet[:1])
    page = console_for(viewer_user).get(f"/commands/{command.pk}/").content.decode()
    assert 'data-counter="total">3<' in page and 'data-counter="cancelled">1<' in page
    assert "2 of 3 succeeded · 1 cancelled" in page
    row = page[page.index('<span class="hwid">TILL-0</span>') :].split("</tr>")[0]
    assert "cancelled" in row and "deleted" in row


def test_results_purged_before_they_were_kept_still_count_toward_the_targets(console_for, viewer_user):
    """Deliveries a purge deleted before this change: the command's target count still stands,
    and the missing ones read as deleted, never as fewer targets."""
    fleet = [make_device() for _ in range(4)]
    command = services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    for d in fleet:
        d.report(str(command.pk), "succeeded", exit_code=0)
    Delivery.objects.filter(command=command, device__in=[d.device for d in fleet[:2]]).delete()
    client = console_for(viewer_user)
    history = client.get("/commands/").content.decode()
    assert "4 devices" in history and "2 ok · 0 failed · 2 deleted before results were kept" in history
    page = client.get(f"/commands/{command.pk}/").content.decode()
    assert 'data-counter="total">4<' in page and 'data-counter="gone">2<' in page
    assert "2 of 4 succeeded · 2 deleted before results were kept" in page


def test_a_restored_device_that_enrolls_again_keeps_its_old_results_and_takes_new_commands(admin_user, no_purge_task):
    sim = make_device()
    first = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [sim.id]}).command
    sim.report(str(first.pk), "succeeded", exit_code=0)
    delete_and_purge(admin_user, [sim])
    device_services.restore_device(actor=admin_user, device=sim.device)
    second = services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [sim.id]}).command
    seqs = dict(Delivery.objects.filter(device=sim.device).values_list("command_id", "seq"))
    assert set(seqs) == {first.pk, second.pk} and seqs[second.pk] > seqs[first.pk]
