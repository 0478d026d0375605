"""History rows land in daily partitions; maintenance creates them ahead and drops them past
retention (PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from devices import partitions
from devices.models import HeartbeatSample

pytestmark = pytest.mark.django_db


def _partition_of(device_id, at) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM devices_heartbeatsample WHERE device_id = %s AND at = %s", [device_id, at]
        )
        return cursor.fetchone()[0]


def _names() -> set[str]:
    return {p.name for p in partitions.list_partitions()}


def test_the_table_is_partitioned_by_range_on_at():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT partstrat, a.attname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0] WHERE c.relname = %s",
            [partitions.TABLE],
        )
        assert cursor.fetchone() == ("r", "at")


def test_ensure_creates_today_and_seven_days_ahead():
    today = date(2031, 3, 10)
    created = partitions.ensure_partitions(today=today)
    assert created == [partitions.partition_name(today + timedelta(days=i)) for i in range(8)]
    assert partitions.ensure_partitions(today=today) == []  # idempotent


def test_a_heartbeat_sample_lands_in_its_days_partition(beat, enrolled_device):
    partitions.ensure_partitions(today=date(2031, 4, 1))
    at = datetime(2031, 4, 2, 13, 30, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        beat(enrolled_device, battery_pct=60)
    assert _partition_of(enrolled_device.device.pk, at) == "devices_heartbeatsample_p20310402"


def test_a_sample_without_a_partition_lands_in_default_and_is_moved_when_its_day_is_created(enrolled_device):
    at = datetime(2032, 1, 5, 8, 0, tzinfo=UTC)
    HeartbeatSample.objects.create(device=enrolled_device.device, at=at, battery_pct=10)
    assert _partition_of(enrolled_device.device.pk, at) == partitions.DEFAULT_PARTITION
    assert partitions.ensure_partition(date(2032, 1, 5)) is True
    assert _partition_of(enrolled_device.device.pk, at) == "devices_heartbeatsample_p20320105"
    assert HeartbeatSample.objects.filter(device=enrolled_device.device).count() == 1


def test_drop_expired_drops_whole_partitions_past_retention(enrolled_device):
    partitions.ensure_partitions(today=date(2033, 6, 1), days_ahead=10)
    HeartbeatSample.objects.create(device=enrolled_device.device, at=datetime(2033, 6, 2, tzinfo=UTC), battery_pct=1)
    HeartbeatSample.objects.create(device=enrolled_device.device, at=datetime(2033, 6, 9, tzinfo=UTC), battery_pct=2)
    dropped = partitions.drop_expired(retention_days=5, today=date(2033, 6, 10))
    assert "devices_heartbeatsample_p20330602" in dropped and "devices_heartbeatsample_p20330604" in dropped
    assert "devices_heartbeatsample_p20330605" not in dropped
    assert "devices_heartbeatsample_p20330602" not in _names()
    assert list(HeartbeatSample.objects.filter(device=enrolled_device.device).values_list("battery_pct", flat=True)) == [2]


def test_drop_expired_uses_the_fleet_retention_and_cleans_default(enrolled_device):
    from mdm.models import FleetSettings

    FleetSettings.objects.update_or_create(pk=1, defaults={"history_retention_days": 3})
    FleetSettings.forget_cached()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    HeartbeatSample.objects.create(device=enrolled_device.device, at=old, battery_pct=1)
    partitions.drop_expired(today=date(2020, 1, 10))
    assert not HeartbeatSample.objects.filter(at=old).exists()


def test_the_management_command_ensures_drops_and_lists(capsys):
    with time_machine.travel(datetime(2034, 2, 1, 12, tzinfo=UTC), tick=False):
        call_command("partitions", "--ensure")
        out = capsys.readouterr().out
        assert "devices_heartbeatsample_p20340208" in out
        call_command("partitions", "--list")
        listing = capsys.readouterr().out
    assert "devices_heartbeatsample_p20340201\t2034-02-01\t0 rows" in listing
    assert "DEFAULT" in listing


def test_the_beat_task_maintains_both_ways():
    from devices.tasks import maintain_partitions

    with time_machine.travel(datetime(2035, 5, 20, tzinfo=UTC), tick=False):
        partitions.ensure_partitions(today=date(2035, 4, 1), days_ahead=0)
        result = maintain_partitions.apply().get()
    assert "devices_heartbeatsample_p20350527" in result["created"]
    assert "devices_heartbeatsample_p20350401" in result["dropped"]
