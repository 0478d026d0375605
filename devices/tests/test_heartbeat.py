"""POST /api/v1/device/heartbeat, rule by rule (PROTOCOL.md)."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from devices import hooks
from devices.models import Device, DeviceStatus, HeartbeatSample
from devices.services import apps_hash
from mdm.models import FleetSettings

pytestmark = pytest.mark.django_db

FULL = {
    "battery_pct": 81,
    "charging": True,
    "battery_temp_c": 31.5,
    "mem_total_mb": 3800,
    "mem_avail_mb": 1200,
    "storage_total_mb": 64000,
    "storage_free_mb": 20000,
    "network_type": "wifi",
    "wifi_ssid": "Warehouse",
    "wifi_rssi": -61,
    "ip_address": "192.0.2.14",
    "foreground_app": "com.example.kiosk",
    "uptime_s": 86400,
    "agent_version": "1.4.2",
    "fcm_token": "fcm-token-1",
    "apps_hash": "a" * 64,
    "kids": ["k1"],
    "bad_envelopes": 0,
}


def test_a_heartbeat_is_answered_200_with_the_protocol_fields(beat, enrolled_device):
    response = beat(enrolled_device, battery_pct=50)
    assert response.status_code == 200
    body = response.json()
    assert {"server_time", "heartbeat_interval_s", "commands", "more_commands", "cancelled", "inventory_requested", "ignored_fields"} <= set(body)
    assert body["commands"] == [] and body["more_commands"] is False and body["cancelled"] == []
    assert body["ignored_fields"] == [] and body["heartbeat_interval_s"] == 30
    assert abs(body["server_time"] - int(timezone.now().timestamp())) <= 2


def test_every_field_is_stored_under_its_heartbeat_name(beat, enrolled_device):
    beat(enrolled_device, **FULL)
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    for name, value in FULL.items():
        if name in ("fcm_token", "bad_envelopes"):
            continue
        assert getattr(status, name) == value, name
    assert status.online and status.last_seen is not None
    assert Device.objects.get(pk=enrolled_device.device.pk).fcm_token == "fcm-token-1"


def test_the_path_works_with_and_without_a_trailing_slash(beat, enrolled_device):
    assert beat(enrolled_device, path="/api/v1/device/heartbeat/").status_code == 200


def test_an_empty_heartbeat_is_fine(beat, enrolled_device):
    assert beat(enrolled_device).status_code == 200


INVALID = [
    ("battery_pct", 101),
    ("battery_pct", -1),
    ("battery_pct", "80"),
    ("battery_pct", 50.5),
    ("battery_pct", True),
    ("charging", "yes"),
    ("charging", 1),
    ("battery_temp_c", "hot"),
    ("battery_temp_c", 500),
    ("mem_total_mb", -5),
    ("mem_avail_mb", "lots"),
    ("storage_total_mb", 1.5),
    ("storage_free_mb", None),
    ("network_type", "5g"),
    ("network_type", None),
    ("wifi_ssid", 42),
    ("wifi_ssid", '"Quoted"'),
    ("wifi_ssid", "x" * 65),
    ("wifi_rssi", 10),
    ("wifi_rssi", "-60"),
    ("ip_address", "999.1.1.1"),
    ("ip_address", 12),
    ("foreground_app", 3),
    ("foreground_app", "p" * 257),
    ("uptime_s", -1),
    ("agent_version", {"v": 1}),
    ("fcm_token", 7),
    ("apps_hash", "ABC"),
    ("apps_hash", "A" * 64),
    ("device_time", "now"),
    ("device_time", -3),
    ("kids", "k1"),
    ("kids", [1, 2]),
    ("kids", ["k"] * 9),
    ("bad_envelopes", -1),
    ("bad_envelopes", "two"),
]


@pytest.mark.parametrize("field, value", INVALID, ids=[f"{f}={v!r}"[:40] for f, v in INVALID])
def test_an_invalid_field_is_dropped_not_stored_and_named(beat, enrolled_device, field, value):
    beat(enrolled_device, **{**FULL, "device_time": int(timezone.now().timestamp())})
    before = DeviceStatus.objects.filter(device=enrolled_device.device).values().get()
    response = beat(enrolled_device, **{"battery_pct": 42, field: value})
    assert response.status_code == 200
    assert response.json()["ignored_fields"] == [field]
    after = DeviceStatus.objects.filter(device=enrolled_device.device).values().get()
    column = {"bad_envelopes": "bad_envelopes_total"}.get(field, field)
    if column in after:
        assert after[column] == before[column]
    if field != "battery_pct":
        assert after["battery_pct"] == 42  # the valid fields of the same heartbeat are kept


def test_several_invalid_fields_are_all_named(beat, enrolled_device):
    body = beat(enrolled_device, battery_pct=900, network_type="laser", charging=False).json()
    assert sorted(body["ignored_fields"]) == ["battery_pct", "network_type"]


def test_unknown_fields_are_ignored_silently(beat, enrolled_device):
    body = beat(enrolled_device, flux_capacitor=1.21, battery_pct=5).json()
    assert body["ignored_fields"] == []


def test_a_null_wifi_ssid_clears_it(beat, enrolled_device):
    beat(enrolled_device, wifi_ssid="Office")
    beat(enrolled_device, wifi_ssid=None)
    assert DeviceStatus.objects.get(device=enrolled_device.device).wifi_ssid is None


def test_an_empty_fcm_token_clears_it(beat, enrolled_device):
    beat(enrolled_device, fcm_token="abc")
    beat(enrolled_device, fcm_token="")
    assert Device.objects.get(pk=enrolled_device.device.pk).fcm_token == ""


def test_an_fcm_token_claimed_by_another_device_is_removed_from_the_old_one(beat, enrolled_device, other_enrolled_device):
    beat(other_enrolled_device, fcm_token="shared")
    beat(enrolled_device, fcm_token="shared")
    assert Device.objects.get(pk=other_enrolled_device.device.pk).fcm_token == ""
    assert Device.objects.get(pk=enrolled_device.device.pk).fcm_token == "shared"


def test_clock_drift_is_device_time_minus_server_time(beat, enrolled_device):
    with time_machine.travel(1764086400, tick=False):
        beat(enrolled_device, device_time=1764086400 - 95)
    assert DeviceStatus.objects.get(device=enrolled_device.device).clock_drift_s == -95


def test_bad_envelopes_add_up_as_a_security_signal(beat, enrolled_device):
    beat(enrolled_device, bad_envelopes=2)
    beat(enrolled_device, bad_envelopes=0)
    beat(enrolled_device, bad_envelopes=3)
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert status.bad_envelopes_total == 5 and status.last_bad_envelope_at is not None


# --- Inventory request -----------------------------------------------------------------------


def test_inventory_is_requested_when_apps_hash_differs_from_the_stored_one(beat, enrolled_device, client):
    apps = [{"package": "com.a", "version_code": 3, "enabled": True}]
    assert beat(enrolled_device, apps_hash=apps_hash(apps)).json()["inventory_requested"] is True
    client.put("/api/v1/device/inventory", data=json.dumps({"apps": apps}), content_type="application/json", **enrolled_device.auth)
    assert beat(enrolled_device, apps_hash=apps_hash(apps)).json()["inventory_requested"] is False
    assert beat(enrolled_device, apps_hash="b" * 64).json()["inventory_requested"] is True


def test_inventory_is_not_requested_without_an_apps_hash(beat, enrolled_device):
    assert beat(enrolled_device, battery_pct=3).json()["inventory_requested"] is False


# --- Commands part and settings --------------------------------------------------------------


def test_the_commands_part_comes_from_the_commands_hook_with_the_devices_kids(beat, enrolled_device, monkeypatch):
    seen = []

    def answer(*, device_id, kids, **_):
        seen.append((device_id, kids))
        return {"commands": [{"payload": "{}", "kid": "k1", "sig": "00"}], "more_commands": True, "cancelled": ["c1"], "command_keys": []}

    monkeypatch.setitem(hooks.implementations, "heartbeat_answer", answer)
    body = beat(enrolled_device, kids=["k1", "k2"]).json()
    assert seen == [(str(enrolled_device.device.pk), ["k1", "k2"])]
    assert body["more_commands"] is True and body["cancelled"] == ["c1"] and body["command_keys"] == []


def test_invalid_kids_reach_the_hook_as_absent(beat, enrolled_device, monkeypatch):
    seen = []
    monkeypatch.setitem(hooks.implementations, "heartbeat_answer", lambda **kw: seen.append(kw["kids"]) or {"commands": [], "more_commands": False, "cancelled": []})
    beat(enrolled_device, kids="k1")
    assert seen == [None]


def test_the_interval_comes_from_the_fleet_settings(beat, enrolled_device):
    FleetSettings.objects.update_or_create(pk=1, defaults={"heartbeat_interval_s": 60})
    FleetSettings.forget_cached()
    assert beat(enrolled_device).json()["heartbeat_interval_s"] == 60


# --- Refusals --------------------------------------------------------------------------------


def test_no_token_is_401_token_invalid(client):
    response = client.post("/api/v1/device/heartbeat", data="{}", content_type="application/json")
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


@pytest.mark.parametrize("header", ["Device", "Device ", "Bearer abc.def", "Device nodot", "Device abc.wrongsecret", "Token x.y"])
def test_a_bad_token_is_401_token_invalid(client, enrolled_device, header):
    response = client.post("/api/v1/device/heartbeat", data="{}", content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"


def test_another_devices_secret_with_this_token_id_is_refused(beat, enrolled_device, other_enrolled_device):
    forged = enrolled_device.token.split(".")[0] + "." + other_enrolled_device.token.split(".")[1]
    assert beat(forged).status_code == 401


def test_a_heartbeat_updates_only_its_own_device(beat, enrolled_device, other_enrolled_device):
    beat(enrolled_device, battery_pct=11)
    assert DeviceStatus.objects.get(device=other_enrolled_device.device).battery_pct is None


@pytest.mark.parametrize("raw", [b"not json", b"[]", b"42", b"null", b"\xff"])
def test_a_body_that_is_not_a_json_object_is_400_invalid(beat, enrolled_device, raw):
    response = beat(enrolled_device, raw=raw)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_body_over_one_mebibyte_is_413_too_large(beat, enrolled_device):
    response = beat(enrolled_device, raw=json.dumps({"foreground_app": "x" * (1024 * 1024 + 10)}))
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_the_answer_is_json_whatever_the_accept_header(client, enrolled_device):
    response = client.post(
        "/api/v1/device/heartbeat", data="{}", content_type="application/json", HTTP_ACCEPT="text/html", **enrolled_device.auth
    )
    assert response["Content-Type"].startswith("application/json")


def test_the_first_authentication_marks_the_token_used(beat, enrolled_device):
    assert Device.objects.get(pk=enrolled_device.device.pk).token_used_at is None
    beat(enrolled_device)
    used = Device.objects.get(pk=enrolled_device.device.pk).token_used_at
    assert used is not None
    beat(enrolled_device)
    assert Device.objects.get(pk=enrolled_device.device.pk).token_used_at == used


def test_heartbeats_are_counted(beat, enrolled_device):
    from mdm.metrics import HEARTBEATS

    ok, rejected = HEARTBEATS.labels("ok")._value.get(), HEARTBEATS.labels("rejected")._value.get()
    beat(enrolled_device)
    beat("bad.token")
    assert HEARTBEATS.labels("ok")._value.get() == ok + 1
    assert HEARTBEATS.labels("rejected")._value.get() == rejected + 1


def test_a_missing_status_row_is_recreated(beat, enrolled_device):
    DeviceStatus.objects.filter(device=enrolled_device.device).delete()
    assert beat(enrolled_device, battery_pct=9).status_code == 200
    assert DeviceStatus.objects.get(device=enrolled_device.device).battery_pct == 9


def test_samples_keep_the_latest_values_of_fields_not_sent(beat, enrolled_device):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        beat(enrolled_device, battery_pct=70, mem_avail_mb=900)
        traveller.shift(timedelta(seconds=11))
        beat(enrolled_device, battery_pct=69)
    samples = list(HeartbeatSample.objects.filter(device=enrolled_device.device).order_by("at"))
    assert [(s.battery_pct, s.mem_avail_mb) for s in samples] == [(70, 900), (69, 900)]
