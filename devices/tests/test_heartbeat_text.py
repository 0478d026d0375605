"""Protocol v1.1 on the heartbeat (PROTOCOL.md "Text"): a field that breaks the text rules or its
bounds is dropped and named in `ignored_fields`, never stored, queued or logged raw; the body
itself must be UTF-8; the v1.1 telemetry fields are accepted and stored."""

import json
from datetime import date

import pytest
from django.db import connection

from devices import services, writebehind
from devices.models import Device, DeviceStatus
from mdm import deadletters, redis_client

pytestmark = pytest.mark.django_db

NUL, LONE = "a\x00b", "a\ud800b"  # json.dumps sends them as the escapes \u0000 and \ud800

# Every text field of the heartbeat with a valid value (the poisoned variants are made from it).
TEXT_FIELDS = {
    "wifi_ssid": "Depot",
    "foreground_app": "com.example.kiosk",
    "agent_version": "1.4.2",
    "fcm_token": "fcm-1",
    "os_version": "14",
}


def status_of(enrolled) -> DeviceStatus:
    return DeviceStatus.objects.get(device=enrolled.device)


@pytest.mark.parametrize("bad", [NUL, LONE, "\x00", "\udfff"], ids=["nul", "lone-high", "only-nul", "lone-low"])
@pytest.mark.parametrize("field", [*TEXT_FIELDS, "kids", "ip_address", "security_patch"])
def test_a_text_field_with_a_nul_or_a_lone_surrogate_is_dropped_and_named(beat, enrolled_device, field, bad):
    value = [bad] if field == "kids" else bad
    response = beat(enrolled_device, battery_pct=42, **{field: value})
    assert response.status_code == 200
    assert response.json()["ignored_fields"] == [field]
    status = status_of(enrolled_device)
    assert status.battery_pct == 42  # the rest of the heartbeat is kept
    stored = Device.objects.get(pk=enrolled_device.device.pk).fcm_token if field == "fcm_token" else getattr(status, field)
    assert stored in ("", None, [])
    assert deadletters.count() == 0  # refused at the edge: nothing reached the queue


def test_text_lengths_are_the_protocols_and_the_columns_hold_them(beat, enrolled_device):
    long = {"foreground_app": "é" * 256, "agent_version": "v" * 256, "os_version": "o" * 256}
    token = "😀" * 4096  # 16 KiB of UTF-8: more than a btree index entry may hold
    response = beat(enrolled_device, fcm_token=token, **long)
    assert response.json()["ignored_fields"] == []
    status = status_of(enrolled_device)
    assert {name: getattr(status, name) for name in long} == long
    assert Device.objects.get(pk=enrolled_device.device.pk).fcm_token == token
    over = beat(enrolled_device, fcm_token="x" * 4097, foreground_app="p" * 257, agent_version="v" * 257, os_version="o" * 257)
    assert sorted(over.json()["ignored_fields"]) == ["agent_version", "fcm_token", "foreground_app", "os_version"]


def test_a_token_as_long_as_the_protocol_allows_is_found_by_its_index(beat, enrolled_device, other_enrolled_device):
    token = "t" * 4096
    beat(other_enrolled_device, fcm_token=token)
    beat(enrolled_device, fcm_token=token)  # claimed by another device: removed from the first
    assert Device.objects.get(pk=other_enrolled_device.device.pk).fcm_token == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'devices_device' AND indexdef LIKE '%%fcm_token%%'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert definitions and all("USING hash" in d for d in definitions)


@pytest.mark.parametrize("value, ignored", [(0, False), (10_000, False), (10_001, True), (-1, True), (2**40, True)])
def test_bad_envelopes_are_bounded_per_heartbeat(beat, enrolled_device, value, ignored):
    response = beat(enrolled_device, bad_envelopes=value)
    assert (response.json()["ignored_fields"] == ["bad_envelopes"]) is ignored
    assert status_of(enrolled_device).bad_envelopes_total == (0 if ignored else value)


def test_finding_1_a_cumulative_bad_envelopes_total_past_32_bits_still_flushes(beat, enrolled_device, other_enrolled_device):
    DeviceStatus.objects.filter(device=enrolled_device.device).update(bad_envelopes_total=2**31 - 5)
    beat(enrolled_device, bad_envelopes=10_000)
    beat(other_enrolled_device, battery_pct=12)  # in the same flush
    assert status_of(enrolled_device).bad_envelopes_total == 2**31 - 5 + 10_000
    assert status_of(other_enrolled_device).battery_pct == 12
    assert deadletters.count() == 0


V11 = {
    "os_version": "14",
    "security_patch": "2024-05-05",
    "pending_system_update": {"received_at": 1764086400, "security_patch": "2024-06-01"},
    "policy_version": 7,
    "lock_task_active": True,
    "usage_access": False,
    "battery_optimization_exempt": True,
}


@pytest.mark.parametrize("write_behind", [True, False], ids=["write-behind", "direct"])
def test_the_v1_1_fields_are_accepted_stored_and_shown_by_the_api(beat, enrolled_device, admin_api, settings, write_behind):
    settings.HEARTBEAT_WRITE_BEHIND = write_behind
    response = beat(enrolled_device, **V11)
    assert response.status_code == 200 and response.json()["ignored_fields"] == []
    status = status_of(enrolled_device)
    assert status.security_patch == date(2024, 5, 5)
    assert (status.os_version, status.policy_version, status.lock_task_active) == ("14", 7, True)
    assert status.pending_system_update == V11["pending_system_update"]
    shown = admin_api.get(f"/api/v1/devices/{enrolled_device.device.pk}").json()["status"]
    assert {k: shown[k] for k in V11} == V11


def test_a_pending_update_without_a_patch_level_is_stored_as_null(beat, enrolled_device):
    beat(enrolled_device, pending_system_update={"received_at": 5, "extra": "dropped"})
    assert status_of(enrolled_device).pending_system_update == {"received_at": 5, "security_patch": None}
    beat(enrolled_device, pending_system_update=None)
    assert status_of(enrolled_device).pending_system_update is None


V11_INVALID = [
    ("security_patch", "2024-02-30"),
    ("security_patch", "2024-5-5"),
    ("security_patch", "20240505"),
    ("security_patch", "٢٠٢٤-٠٥-٠٥"),  # Arabic-Indic digits: \d would take them
    ("security_patch", "2024-05-05\n"),
    ("security_patch", None),
    ("pending_system_update", {"security_patch": "2024-01-01"}),
    ("pending_system_update", {"received_at": -1}),
    ("pending_system_update", {"received_at": 1, "security_patch": "soon"}),
    ("pending_system_update", [1]),
    ("policy_version", -1),
    ("policy_version", 2**31),
    ("policy_version", "7"),
    ("lock_task_active", "true"),
    ("usage_access", 1),
    ("battery_optimization_exempt", None),
    ("os_version", 14),
    ("apps_hash", "a" * 64 + "\n"),  # `$` would let the newline through, one character too many
    ("ip_address", "fe80::1%wlan0"),  # Python takes an IPv6 zone, PostgreSQL's inet does not
    ("battery_temp_c", float("nan")),
    ("uptime_s", float("inf")),
]


@pytest.mark.parametrize("field, value", V11_INVALID, ids=[f"{f}={v!r}"[:40] for f, v in V11_INVALID])
def test_a_value_postgresql_would_refuse_is_dropped_at_the_edge(beat, enrolled_device, field, value):
    response = beat(enrolled_device, battery_pct=30, **{field: value})
    assert response.status_code == 200 and response.json()["ignored_fields"] == [field]
    assert status_of(enrolled_device).battery_pct == 30 and deadletters.count() == 0


@pytest.mark.parametrize("raw", [
    json.dumps({"battery_pct": 50}).encode("utf-16"),
    json.dumps({"battery_pct": 50}).encode("utf-32"),
    b'{"wifi_ssid": "\xed\xa0\x80"}',  # a surrogate smuggled in UTF-8 bytes
    b'{"wifi_ssid": "caf\xe9"}',  # Latin-1
    b'{"battery_pct": 50}\xff',
], ids=["utf-16", "utf-32", "utf8-surrogate", "latin-1", "trailing-byte"])
def test_a_body_that_is_not_utf_8_is_400_invalid(beat, enrolled_device, raw):
    response = beat(enrolled_device, raw=raw)
    assert response.status_code == 400 and response.json()["code"] == "invalid"
    assert status_of(enrolled_device).battery_pct is None


@pytest.mark.parametrize("path, method", [
    ("/api/v1/device/heartbeat", "post"),
    ("/api/v1/device/inventory", "put"),
    ("/api/v1/device/commands/7c9e6679-7425-40de-944b-e07fc1f90ae7/result", "post"),
])
@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_deeply_nested_json_is_400_never_a_500(client, enrolled_device, path, method, depth):
    raw = '{"a": ' + "[" * depth + "]" * depth + "}"
    response = getattr(client, method)(path, data=raw, content_type="application/json", **enrolled_device.auth)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_moderately_nested_unknown_fields_are_ignored(beat, enrolled_device):
    response = beat(enrolled_device, battery_pct=9, extra=json.loads("[" * 50 + "]" * 50))
    assert response.status_code == 200 and response.json()["ignored_fields"] == []


def test_nothing_that_breaks_the_rules_reaches_redis_or_the_log(client, enrolled_device, caplog):
    caplog.set_level("DEBUG")
    client.post("/api/v1/device/heartbeat", data=json.dumps({"wifi_ssid": NUL, "foreground_app": LONE, "battery_pct": 3}),
                content_type="application/json", **enrolled_device.auth)
    raw = redis_client.client().get(writebehind.state_key(enrolled_device.device.pk))
    state = json.loads(raw)
    assert "wifi_ssid" not in state and "foreground_app" not in state and state["battery_pct"] == 3
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "\x00" not in logged and "\ud800" not in logged and "\\u0000" not in logged
    services.flush_heartbeats()
    assert status_of(enrolled_device).battery_pct == 3


def test_finding_7_a_lone_surrogate_in_heartbeat_text_is_ignored_not_a_503(beat, enrolled_device):
    response = beat(enrolled_device, raw='{"foreground_app": "x\\ud800", "battery_pct": 17}')
    assert response.status_code == 200 and response.json()["ignored_fields"] == ["foreground_app"]
    assert status_of(enrolled_device).battery_pct == 17


def test_finding_7_a_nul_in_the_fcm_token_is_ignored_not_a_500(beat, enrolled_device):
    response = beat(enrolled_device, raw='{"fcm_token": "tok\\u0000en", "battery_pct": 18}')
    assert response.status_code == 200 and response.json()["ignored_fields"] == ["fcm_token"]
    assert Device.objects.get(pk=enrolled_device.device.pk).fcm_token == ""
