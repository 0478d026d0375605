"""Offline detection: the beat task marks devices offline past the threshold and broadcasts;
coming back online is immediate."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from devices import live, services
from devices.models import DeviceStatus
from mdm.metrics import DEVICES_ONLINE
from mdm.models import FleetSettings

pytestmark = pytest.mark.django_db


def _online(device) -> bool:
    return DeviceStatus.objects.get(device=device).online


def test_a_device_is_offline_after_three_intervals_without_a_heartbeat(beat, enrolled_device):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        beat(enrolled_device)
    services.sweep_offline(now=start + timedelta(seconds=89))
    assert _online(enrolled_device.device)
    gone = services.sweep_offline(now=start + timedelta(seconds=91))
    assert gone == [str(enrolled_device.device.pk)] and not _online(enrolled_device.device)


def test_the_threshold_follows_the_fleet_settings(beat, enrolled_device):
    FleetSettings.objects.update_or_create(pk=1, defaults={"heartbeat_interval_s": 30, "offline_after_s": 300})
    FleetSettings.forget_cached()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        beat(enrolled_device)
    services.sweep_offline(now=start + timedelta(seconds=200))
    assert _online(enrolled_device.device)
    services.sweep_offline(now=start + timedelta(seconds=301))
    assert not _online(enrolled_device.device)


def test_the_next_heartbeat_brings_it_back_online_at_once(beat, enrolled_device):
    beat(enrolled_device)
    services.sweep_offline(now=timezone.now() + timedelta(hours=1))
    assert not _online(enrolled_device.device)
    beat(enrolled_device)
    assert _online(enrolled_device.device)


def test_the_sweep_sets_the_online_gauge(beat, enrolled_device, other_enrolled_device):
    beat(enrolled_device)
    beat(other_enrolled_device)
    services.sweep_offline()
    assert DEVICES_ONLINE._value.get() == 2


def test_going_offline_and_coming_back_mark_the_device_for_the_console(beat, enrolled_device):
    beat(enrolled_device)
    live.clear()
    services.sweep_offline(now=timezone.now() + timedelta(hours=1))
    assert live.take_dirty() == [str(enrolled_device.device.pk)]
    beat(enrolled_device)
    assert live.take_dirty() == [str(enrolled_device.device.pk)]


def test_an_unchanged_heartbeat_does_not_disturb_the_console(beat, enrolled_device):
    beat(enrolled_device, battery_pct=50, mem_avail_mb=100)
    live.clear()
    beat(enrolled_device, battery_pct=50, mem_avail_mb=90)
    assert live.take_dirty() == []
    beat(enrolled_device, battery_pct=49)
    assert live.take_dirty() == [str(enrolled_device.device.pk)]


def test_one_flush_sends_every_dirty_device_in_one_message(beat, enrolled_device, other_enrolled_device, monkeypatch, capture_on_commit):
    from mdm import realtime

    sent = []
    monkeypatch.setattr(realtime, "send_many_now", sent.extend)
    realtime.watch(["devices", f"device.{enrolled_device.device.pk}"])  # the list and one device page are open
    live.mark_dirty([enrolled_device.device.pk, other_enrolled_device.device.pk])
    with capture_on_commit(execute=True):
        assert services.broadcast_status_changes() == 2
    topics = [t for t, _ in sent]
    assert topics.count("devices") == 1
    html = dict(sent)["devices"]
    assert f"dev-{enrolled_device.device.pk}-battery" in html and f"dev-{other_enrolled_device.device.pk}-state" in html
    assert 'id="fleet-summary"' in html
    assert f"device.{enrolled_device.device.pk}" in topics
    assert f"device.{other_enrolled_device.device.pk}" not in topics  # nobody watches it: not even rendered
    assert services.broadcast_status_changes() == 0  # nothing left


def test_a_backlog_bigger_than_one_flush_is_drained_without_waiting_for_the_beat(monkeypatch):
    from devices import tasks
    from devices.tests.factories import DeviceFactory

    monkeypatch.setattr(live, "MAX_PER_FLUSH", 2)
    scheduled = []
    monkeypatch.setattr(tasks.flush_live_updates, "apply_async", lambda **kw: scheduled.append(kw))
    live.mark_dirty([DeviceFactory().pk for _ in range(5)])
    assert tasks.flush_live_updates() == 2
    assert scheduled == [{"countdown": live.FLUSH_DELAY_S}]  # more left: the next flush is on its way
    assert tasks.flush_live_updates() == 2
    assert tasks.flush_live_updates() == 1
    assert len(scheduled) == 2  # the last one found nothing more
