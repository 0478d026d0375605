"""Heartbeat write-behind (devices.writebehind): heartbeats land in Redis at once and reach
PostgreSQL in bulk on the next flush, without losing or reordering anything."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices import services, writebehind
from devices.models import DeviceStatus, HeartbeatSample


def _post(client, enrolled, **fields):
    return client.post("/api/v1/device/heartbeat", data=json.dumps(fields), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Device {enrolled.token}")


def test_a_heartbeat_reaches_postgresql_on_the_next_flush(client, enrolled_device):
    assert writebehind.enabled()
    assert _post(client, enrolled_device, battery_pct=64, network_type="wifi").status_code == 200
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.battery_pct != 64  # buffered, not written yet
    assert services.flush_heartbeats() == 1
    status.refresh_from_db()
    assert (status.battery_pct, status.network_type, status.online) == (64, "wifi", True)
    assert HeartbeatSample.objects.filter(device=enrolled_device.device, battery_pct=64).count() == 1


def test_fields_a_heartbeat_leaves_out_keep_their_value(client, enrolled_device):
    _post(client, enrolled_device, battery_pct=50, wifi_ssid="Depot", foreground_app="com.example.kiosk")
    services.flush_heartbeats()
    _post(client, enrolled_device, battery_pct=49)
    _post(client, enrolled_device, wifi_ssid=None)
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert (status.battery_pct, status.wifi_ssid, status.foreground_app) == (49, None, "com.example.kiosk")


def test_bad_envelopes_add_up_across_heartbeats_between_flushes(client, enrolled_device):
    _post(client, enrolled_device, bad_envelopes=2)
    _post(client, enrolled_device, bad_envelopes=3)
    services.flush_heartbeats()
    _post(client, enrolled_device, bad_envelopes=1)
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.bad_envelopes_total == 6
    assert status.last_bad_envelope_at is not None


def test_one_flush_writes_many_devices_in_a_few_statements(client, enrolled_device, other_enrolled_device):
    for device in (enrolled_device, other_enrolled_device):
        _post(client, device, battery_pct=33, network_type="cellular")
    with CaptureQueriesContext(connection) as queries:
        assert services.flush_heartbeats() == 2
    # states of both devices: one UPDATE; their history: one INSERT (plus the transaction).
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 2
    assert DeviceStatus.objects.filter(battery_pct=33, network_type="cellular").count() == 2


def test_the_history_sample_is_taken_at_most_every_ten_seconds(client, enrolled_device):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            _post(client, enrolled_device, battery_pct=70)
            traveller.shift(timedelta(seconds=3))
        services.flush_heartbeats()
    assert HeartbeatSample.objects.filter(device=enrolled_device.device).count() == 2  # t=0 and t=12


def test_the_offline_sweep_flushes_first_so_a_buffered_heartbeat_keeps_its_device_online(client, enrolled_device):
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        _post(client, enrolled_device, battery_pct=10)
        services.flush_heartbeats()
    _post(client, enrolled_device, battery_pct=11)  # fresh, only in Redis
    assert str(enrolled_device.device.pk) not in services.sweep_offline()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.online and status.battery_pct == 11


def test_without_write_behind_heartbeats_write_directly(client, enrolled_device, settings):
    settings.HEARTBEAT_WRITE_BEHIND = False
    _post(client, enrolled_device, battery_pct=21)
    assert DeviceStatus.objects.get(device=enrolled_device.device).battery_pct == 21
    assert services.flush_heartbeats() == 0


def test_an_older_state_written_late_does_not_overwrite_a_newer_one(client, enrolled_device):
    """Two flushers can take states of one device a moment apart; the slower one must lose."""
    _post(client, enrolled_device, battery_pct=40)
    stale = writebehind._client()[0].get(writebehind.state_key(enrolled_device.device.pk))
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        _post(client, enrolled_device, battery_pct=39)
        services.flush_heartbeats()
    slow = writebehind.Claim(id="slow-flusher", device_ids=[str(enrolled_device.device.pk)])
    writebehind.write(slow, [stale])  # the slow flusher
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.battery_pct == 39


def count_redis_commands(monkeypatch) -> list:
    """The names of the commands the project's Redis client sends from now on: a round trip each."""
    from mdm import redis_client

    client = redis_client.client()
    sent = []
    real = type(client).execute_command

    def counting(self, *args, **options):
        sent.append(args[0])
        return real(self, *args, **options)

    monkeypatch.setattr(type(client), "execute_command", counting)
    return sent


def test_a_warm_heartbeat_is_one_redis_round_trip(client, enrolled_device, monkeypatch):
    first = _post(client, enrolled_device, battery_pct=70, charging=False).json()  # token verified and cached
    kids = [key["kid"] for key in first["command_keys"]]
    _post(client, enrolled_device, battery_pct=70, charging=False, kids=kids)  # keys acknowledged: marker clean
    sent = count_redis_commands(monkeypatch)
    response = _post(client, enrolled_device, battery_pct=70, charging=False, network_type="wifi", kids=kids)
    assert response.status_code == 200
    assert response.json()["commands"] == []
    assert sent == ["EVALSHA"]  # token check, state, history, dirty marks and marker: one call


@pytest.mark.parametrize("sent_kids", [None, ["k-lost"]])
def test_a_heartbeat_without_current_kids_is_one_round_trip_too_and_gets_its_keys(client, enrolled_device, monkeypatch,
                                                                                 sent_kids):
    # An agent that lost its state (or an older one): answered its keys from the keyset cached
    # beside the clean marker, read by the same Lua call (commands.markers, docs/performance.md).
    first = _post(client, enrolled_device, battery_pct=70).json()
    kids = [key["kid"] for key in first["command_keys"]]
    _post(client, enrolled_device, battery_pct=70, kids=kids)  # marker clean, keyset cached beside it
    sent = count_redis_commands(monkeypatch)
    fields = {"battery_pct": 70} if sent_kids is None else {"battery_pct": 70, "kids": sent_kids}
    answer = _post(client, enrolled_device, **fields).json()
    assert sent == ["EVALSHA"]
    assert answer["command_keys"] == first["command_keys"] and answer["commands"] == []


def test_the_token_is_checked_inside_the_heartbeat_call(client, enrolled_device):
    assert _post(client, enrolled_device, battery_pct=70).status_code == 200  # cached now
    token_id, secret = enrolled_device.token.split(".", 1)
    forged = f"{token_id}.{secret[:-2]}xx"
    response = client.post("/api/v1/device/heartbeat", data="{}", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Device {forged}")
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.battery_pct == 70  # the forged heartbeat wrote nothing


def test_an_unchanged_battery_and_charging_mark_nothing_for_the_console(client, enrolled_device):
    from devices import live

    _post(client, enrolled_device, battery_pct=70, charging=False)
    live.clear()
    _post(client, enrolled_device, battery_pct=70, charging=False)
    _post(client, enrolled_device, battery_pct=70)
    assert live.pending_count() == 0
    _post(client, enrolled_device, battery_pct=70, charging=True)
    assert live.pending_count() == 1
    live.clear()
    _post(client, enrolled_device, battery_pct=69, charging=True)
    assert live.pending_count() == 1


def test_one_flush_takes_whole_and_fractional_numbers_of_one_column(client, enrolled_device, other_enrolled_device):
    # Through Lua's cjson 31.0 comes back as 31 and a huge integer as a float; one typed array
    # per column must still take them all.
    _post(client, enrolled_device, battery_temp_c=31.0, uptime_s=2**50, wifi_rssi=-60)
    _post(client, other_enrolled_device, battery_temp_c=31.5, uptime_s=12, wifi_rssi=-61)
    assert services.flush_heartbeats() == 2
    temps = dict(DeviceStatus.objects.filter(device__in=[enrolled_device.device, other_enrolled_device.device])
                 .values_list("device_id", "battery_temp_c"))
    assert temps == {enrolled_device.device.pk: 31.0, other_enrolled_device.device.pk: 31.5}
    assert set(HeartbeatSample.objects.values_list("battery_temp_c", flat=True)) == {31.0, 31.5}
    assert DeviceStatus.objects.get(device=other_enrolled_device.device).uptime_s == 12


def test_a_failed_flush_loses_nothing(client, enrolled_device, monkeypatch):
    import pytest

    _post(client, enrolled_device, battery_pct=41, bad_envelopes=2)

    def broken(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(writebehind, "_write_states", broken)
    with pytest.raises(RuntimeError):
        services.flush_heartbeats()
    monkeypatch.undo()
    assert services.flush_heartbeats() == 1  # the device was still dirty, its history still queued
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert (status.battery_pct, status.bad_envelopes_total) == (41, 2)
    assert HeartbeatSample.objects.filter(device=enrolled_device.device, battery_pct=41).count() == 1


def test_a_valid_token_whose_cache_entry_vanishes_gets_busy_not_re_enrollment(client, enrolled_device, monkeypatch):
    # 401 would make the agent re-enroll (PROTOCOL.md); a cache entry evicted between the bcrypt
    # check and the Lua call is the server's problem: 503 busy, retry.
    monkeypatch.setattr(writebehind, "record", lambda **kw: writebehind.Recorded(auth="unknown"))
    response = _post(client, enrolled_device, battery_pct=50)
    assert response.status_code == 503
    assert response.json()["code"] == "busy" and response["Retry-After"]


def test_a_missing_status_row_is_made_again_without_counting_others_twice(client, enrolled_device, other_enrolled_device):
    for device in (enrolled_device, other_enrolled_device):
        _post(client, device, battery_pct=30, bad_envelopes=1)
    DeviceStatus.objects.filter(device=other_enrolled_device.device).delete()  # e.g. a manual cleanup
    assert services.flush_heartbeats() == 2
    rows = dict(DeviceStatus.objects.values_list("device_id", "bad_envelopes_total"))
    assert rows == {enrolled_device.device.pk: 1, other_enrolled_device.device.pk: 1}
