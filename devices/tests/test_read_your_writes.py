"""Read-your-writes for people: the API shows what a device sent as soon as it has its 200,
before the write-behind's flush reaches PostgreSQL (devices.writebehind.overlay)."""

import json

import pytest

from devices import services
from devices.models import DeviceStatus

pytestmark = pytest.mark.django_db


def _beat(client, enrolled, **fields):
    response = client.post("/api/v1/device/heartbeat", data=json.dumps(fields), content_type="application/json", **enrolled.auth)
    assert response.status_code == 200
    return response


def test_the_device_api_shows_a_heartbeat_before_the_flush(client, enrolled_device, admin_api):
    _beat(client, enrolled_device, battery_pct=61, charging=True, wifi_ssid="Lobby", kids=[])
    services.flush_heartbeats()
    _beat(client, enrolled_device, battery_pct=12, charging=False, battery_temp_c=38.5)
    assert DeviceStatus.objects.get(device=enrolled_device.device).battery_pct == 61  # not flushed yet
    url = f"/api/v1/devices/{enrolled_device.device.pk}"
    for body in (admin_api.get(url).json(), admin_api.get("/api/v1/devices").json()["results"][0]):
        assert body["status"]["battery_pct"] == 12 and body["status"]["charging"] is False
        assert body["status"]["battery_temp_c"] == 38.5 and body["status"]["wifi_ssid"] == "Lobby"
        assert body["status"]["online"] is True


def test_the_overlay_reads_redis_once_for_a_whole_page(client, admin_api, django_assert_max_num_queries):
    from devices.tests.factories import DeviceFactory, enroll_for_test
    from mdm import redis_client

    devices = [enroll_for_test(DeviceFactory()) for _ in range(5)]
    for d in devices:
        _beat(client, d, battery_pct=40)
    calls = []
    client_ = redis_client.client()
    original = client_.mget
    client_.mget = lambda keys: calls.append(len(keys)) or original(keys)
    try:
        body = admin_api.get("/api/v1/devices").json()
    finally:
        client_.mget = original
    assert calls == [5] and {r["status"]["battery_pct"] for r in body["results"]} == {40}


def test_a_stale_redis_state_never_hides_a_newer_row(client, enrolled_device, admin_api):
    _beat(client, enrolled_device, battery_pct=70)
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    DeviceStatus.objects.filter(pk=status.pk).update(battery_pct=9, last_seen=status.last_seen.replace(year=status.last_seen.year + 1))
    assert admin_api.get(f"/api/v1/devices/{enrolled_device.device.pk}").json()["status"]["battery_pct"] == 9


def test_the_console_shows_a_heartbeat_before_the_flush(client, enrolled_device, console_for, admin_user):
    _beat(client, enrolled_device, battery_pct=61)
    services.flush_heartbeats()
    _beat(client, enrolled_device, battery_pct=13, foreground_app="com.example.till")
    console = console_for(admin_user)
    page = console.get(f"/devices/{enrolled_device.device.pk}/")
    assert page.context["status"].battery_pct == 13 and b"com.example.till" in page.content
    listing = console.get("/devices/")
    assert [d.status.battery_pct for d in listing.context["page"]] == [13]
