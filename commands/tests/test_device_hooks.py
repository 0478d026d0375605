"""commands/ answers the devices app's hook points (devices.hooks) once Django has started: the
heartbeat's commands part, its marker's key prefix, and a device's deletion and purge."""

from commands import device_hooks, markers, services
from devices import hooks


def test_commands_registers_its_implementations_at_start_up():
    assert hooks.implementations["heartbeat_answer"] is services.heartbeat_answer
    assert hooks.marker_prefix() == markers.PREFIX == markers.key("")
    assert hooks.receivers["device_deleted"] == [device_hooks.on_device_deleted]
    assert hooks.receivers["device_purge"] == [device_hooks.purge_device]


def test_registering_again_adds_no_second_receiver():
    device_hooks.register()
    assert hooks.receivers["device_deleted"] == [device_hooks.on_device_deleted]
    assert hooks.receivers["device_purge"] == [device_hooks.purge_device]


def test_the_heartbeat_and_commands_mean_the_same_unread_marker():
    assert services.UNREAD is hooks.UNREAD
