"""Dual-key rotation (PROTOCOL.md "Keys"): the next key is handed out a day before it signs,
old and new both verify during the rotation, the previous key goes once the device shows the
new set, and a device offline through two rotations recovers on its next heartbeat."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from commands import services, signing
from commands.models import DeviceKey

pytestmark = pytest.mark.django_db


def issue(device):
    return services.issue_command(actor=None, type="ping", params={}, target={"device_ids": [device.id]}, expires_in_s=30 * 86400).command


def heartbeat(device, now=None):
    answer = services.heartbeat_answer(device_id=device.id, kids=device.kids, now=now)
    if "command_keys" in answer:
        device.take_keys(answer["command_keys"])
    return answer


def live_kids(device):
    return dict(DeviceKey.objects.filter(device=device.device).exclude(state="retired").values_list("kid", "state"))


def test_a_rotation_hands_out_the_next_key_while_the_current_one_still_signs(device):
    services.start_key_rotation(actor=None)
    assert live_kids(device) == {"k1": "current", "k2": "next"}
    issue(device)
    answer = heartbeat(device)
    assert [k["kid"] for k in answer["command_keys"]] == ["k1", "k2"]
    envelope = answer["commands"][0]
    assert envelope["kid"] == "k1"
    device.verify(envelope, server_now=int(time.time()))


def test_the_next_key_signs_only_after_a_day(device):
    services.start_key_rotation(actor=None)
    assert services.promote_due_keys(now=timezone.now() + timedelta(hours=23)) == 0
    assert services.promote_due_keys(now=timezone.now() + timedelta(days=1, seconds=1)) == 1
    assert live_kids(device) == {"k1": "previous", "k2": "current"}


def test_old_and_new_keys_both_verify_during_the_rotation(device):
    services.start_key_rotation(actor=None)
    heartbeat(device)  # the device now holds k1 and k2
    issue(device)
    signed_with_old = services.pull_commands(device_id=device.id, limit=1)[0][0]
    services.promote_due_keys(now=timezone.now() + timedelta(days=2))
    issue(device)
    pending = services.pull_commands(device_id=device.id, limit=10)[0]
    signed_with_new = pending[-1]
    assert (signed_with_old["kid"], signed_with_new["kid"]) == ("k1", "k2")
    now = int(time.time())
    device.verify(signed_with_old, server_now=now)
    device.verify(signed_with_new, server_now=now)


def test_the_previous_key_goes_once_the_devices_kids_show_the_new_set(device):
    services.start_key_rotation(actor=None)
    heartbeat(device)
    services.promote_due_keys(now=timezone.now() + timedelta(days=2))
    answer = heartbeat(device)  # kids k1,k2: the device has the current key k2
    assert [k["kid"] for k in answer["command_keys"]] == ["k2"]
    assert live_kids(device) == {"k2": "current"}
    assert "command_keys" not in heartbeat(device)


def test_a_device_offline_through_two_rotations_recovers_on_its_next_heartbeat(device):
    assert device.kids == ["k1"]
    later = timezone.now()
    for _ in range(2):
        services.start_key_rotation(actor=None, now=later)
        later += timedelta(days=1, minutes=1)
        services.promote_due_keys(now=later)
    assert live_kids(device) == {"k2": "previous", "k3": "current"}
    command = issue(device)
    # An envelope signed while it was away fails its stale keys: rule 1, heartbeat, verify again.
    pushed = services.pull_commands(device_id=device.id, limit=1)[0][0]
    with pytest.raises(signing.BadEnvelope):
        device.verify(pushed, server_now=int(time.time()))
    answer = heartbeat(device)
    assert set(device.kids) == {"k2", "k3"}
    envelope = answer["commands"][0]
    assert device.verify(envelope, server_now=int(time.time()))["id"] == str(command.pk)
    device.verify(pushed, server_now=int(time.time()))


def test_a_device_never_holds_more_than_two_keys(device):
    later = timezone.now()
    for _ in range(4):
        services.start_key_rotation(actor=None, now=later)
        later += timedelta(days=1, minutes=1)
        services.promote_due_keys(now=later)
        assert len(live_kids(device)) <= 2
        assert len(heartbeat(device, now=later).get("command_keys", device.keys)) <= 2


def test_keys_are_per_device(sim_device):
    a, b = sim_device(), sim_device()
    assert set(a.keys.values()).isdisjoint(b.keys.values())


def test_rotate_command_keys_starts_a_rotation_and_refuses_a_lead_under_a_day(device, capsys):
    call_command("rotate_command_keys")
    assert "rotation started for 1 device" in capsys.readouterr().out
    assert live_kids(device)["k2"] == "next"
    with pytest.raises(CommandError):
        call_command("rotate_command_keys", "--lead-hours", "2")
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        call_command("rotate_command_keys", "--promote-now")
    assert live_kids(device)["k2"] == "current"
