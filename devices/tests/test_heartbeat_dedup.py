"""History: at most one sample per device per 10 s (frozen time)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from devices.models import HeartbeatSample

pytestmark = pytest.mark.django_db


def _samples(device):
    return HeartbeatSample.objects.filter(device=device).count()


def test_heartbeats_within_ten_seconds_leave_one_sample(beat, enrolled_device):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        beat(enrolled_device, battery_pct=50)
        for _ in range(4):
            traveller.shift(timedelta(seconds=2))
            beat(enrolled_device, battery_pct=49)
    assert _samples(enrolled_device.device) == 1


def test_a_heartbeat_ten_seconds_later_adds_a_sample(beat, enrolled_device):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        beat(enrolled_device, battery_pct=50)
        traveller.shift(timedelta(seconds=9.999))
        beat(enrolled_device, battery_pct=50)
        assert _samples(enrolled_device.device) == 1
        traveller.shift(timedelta(seconds=0.001))
        beat(enrolled_device, battery_pct=48)
    assert _samples(enrolled_device.device) == 2


def test_two_heartbeats_at_the_same_instant_leave_one_sample(beat, enrolled_device):
    with time_machine.travel(timezone.now(), tick=False):
        beat(enrolled_device)
        beat(enrolled_device)
    assert _samples(enrolled_device.device) == 1


def test_dedup_is_per_device(beat, enrolled_device, other_enrolled_device):
    with time_machine.travel(timezone.now(), tick=False):
        beat(enrolled_device)
        beat(other_enrolled_device)
    assert _samples(enrolled_device.device) == _samples(other_enrolled_device.device) == 1


def test_deduplicated_heartbeats_are_counted(beat, enrolled_device):
    from mdm.metrics import HEARTBEATS

    before = HEARTBEATS.labels("history_deduplicated")._value.get()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        beat(enrolled_device)
        traveller.shift(timedelta(seconds=3))
        beat(enrolled_device)
    assert HEARTBEATS.labels("history_deduplicated")._value.get() == before + 1


def test_the_status_row_is_updated_on_every_heartbeat_even_when_deduplicated(beat, enrolled_device):
    from devices.models import DeviceStatus

    with time_machine.travel(timezone.now(), tick=False) as traveller:
        beat(enrolled_device, battery_pct=50)
        traveller.shift(timedelta(seconds=1))
        beat(enrolled_device, battery_pct=47)
    assert DeviceStatus.objects.get(device=enrolled_device.device).battery_pct == 47
