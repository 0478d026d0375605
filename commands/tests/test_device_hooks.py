"""commands/ answers the devices app's hook points (devices.hooks) once Django has started: the
heartbeat's commands part, its marker's key prefix, and a device's deletion and purge."""

from commands import device_hooks, markers, services
from devices import hooks


def test_commands_registers_its_implementations_at_start_up():
    assert hooks.heartbeat_answer.implementation is services.heartbeat_answer
    assert hooks.marker_prefix() == markers.PREFIX == markers.key("")
    assert device_hooks.on_device_deleted in hooks.device_deleted.receivers
    assert device_hooks.purge_device in hooks.device_purge.receivers


def test_registering_again_connects_each_receiver_once():
    device_hooks.register()
    assert hooks.device_deleted.receivers.count(device_hooks.on_device_deleted) == 1
    assert hooks.device_purge.receivers.count(device_hooks.purge_device) == 1


def test_the_marker_the_heartbeat_reads_is_the_one_heartbeat_answer_reads_itself():
    assert services.UNREAD is hooks.UNREAD
