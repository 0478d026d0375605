"""The fleet's online count over time (devices.fleet_stats): the offline sweep keeps one sample per
5 minutes, whatever the fleet's size, and drops those past the retention; the dashboard's live
topic gets the fleet's counts alone."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from devices import fleet_stats, live, services
from devices.models import DeviceStatus, FleetSample
from devices.tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 4, 9, 0, 30, tzinfo=UTC)


def seen(device, at, online=True):
    DeviceStatus.objects.filter(device=device).update(online=online, last_seen=at)


def samples() -> list[tuple[str, int, int]]:
    return [(f"{s.at:%H:%M}", s.online, s.total) for s in FleetSample.objects.all()]


def test_the_sweep_records_the_fleet_once_per_five_minutes():
    a, b, retired = DeviceFactory(), DeviceFactory(), DeviceFactory()
    seen(a, T0)
    seen(b, T0 - timedelta(hours=1), online=False)
    services.delete_devices(actor=None, device_ids=[retired.pk])
    services.sweep_offline(now=T0)
    assert samples() == [("09:00", 1, 2)]  # the retired device is not in the fleet
    seen(b, T0 + timedelta(minutes=2))
    services.sweep_offline(now=T0 + timedelta(minutes=2))
    assert samples() == [("09:00", 1, 2)]  # the bucket is written once, by its first sweep
    seen(a, T0 + timedelta(minutes=4))
    services.sweep_offline(now=T0 + timedelta(minutes=5))  # b is silent past the threshold now
    assert samples() == [("09:00", 1, 2), ("09:05", 1, 2)]
    assert not DeviceStatus.objects.get(device=b).online


def test_samples_past_the_retention_are_dropped_by_the_next_write():
    old, kept = T0 - fleet_stats.KEEP - timedelta(minutes=5), T0 - fleet_stats.KEEP + timedelta(minutes=5)
    FleetSample.objects.bulk_create([FleetSample(at=old, total=1, online=1), FleetSample(at=kept, total=1, online=0)])
    services.sweep_offline(now=T0)
    assert list(FleetSample.objects.values_list("at", flat=True)) == [kept, fleet_stats.bucket_of(T0)]


def test_a_range_of_days_reads_one_point_per_hour():
    for minutes, online in ((0, 2), (5, 4), (55, 6), (60, 1)):
        FleetSample.objects.create(at=T0.replace(second=0) + timedelta(minutes=minutes), total=8 + minutes // 60, online=online)
    hourly = fleet_stats.online_series(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), hourly=True)
    assert [(f"{p.at:%H:%M}", p.online, p.total) for p in hourly] == [("09:00", 4, 8), ("10:00", 1, 9)]
    raw = fleet_stats.online_series(start=T0, end=T0 + timedelta(minutes=30), hourly=False)
    assert [p.online for p in raw] == [4]  # 09:05 only: 09:00 is before T0 (09:00:30)


def test_the_dashboard_topic_gets_the_fleets_counts_and_no_device_cells(monkeypatch, capture_on_commit):
    from mdm import realtime

    sent = []
    monkeypatch.setattr(realtime, "send_many_now", sent.extend)
    devices = [DeviceFactory() for _ in range(2)]
    realtime.watch(["dashboard"])
    try:
        live.mark_dirty([d.pk for d in devices])
        with time_machine.travel(T0, tick=False), capture_on_commit(execute=True):
            assert services.broadcast_status_changes() == 2
    finally:
        realtime.watch(["dashboard"], -1)
    assert [topic for topic, _ in sent] == ["dashboard"]  # the devices list is not open: nothing for it
    html = sent[0][1]
    assert 'id="fleet-summary"' in html and "dev-" not in html  # the dashboard has no device cells to swap
