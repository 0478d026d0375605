"""Write-behind that cannot be poisoned (issue 14, finding 1): one device's bad value never stops
the other devices' status, whether the edge drops it or it reaches Redis some other way; what a
flush cannot write is set aside as a dead letter (mdm.deadletters), counted and never retried."""

import json

import pytest
from django.db import OperationalError
from django.utils import timezone

from devices import services, writebehind
from devices.models import DeviceStatus, HeartbeatSample
from devices.tests.factories import enroll_for_test
from mdm import deadletters, metrics, redis_client

pytestmark = pytest.mark.django_db


def post(client, enrolled, raw: str):
    return client.post("/api/v1/device/heartbeat", data=raw, content_type="application/json", **enrolled.auth)


def three_devices(device_in_group_a):
    return [enroll_for_test(device_in_group_a)] + [enroll_for_test() for _ in range(2)]


def redis():
    return redis_client.client()


def queues_are_empty() -> bool:
    backlog = writebehind.backlog()
    return backlog["dirty_devices"] == backlog["history_samples"] == backlog["claims"] == 0


def dead(kind: str) -> float:
    return metrics.DEAD_LETTERS.labels(kind)._value.get()


def test_finding_1_one_device_posting_a_nul_ssid_no_longer_stops_the_fleets_status(client, device_in_group_a):
    poisoned, *others = three_devices(device_in_group_a)
    response = post(client, poisoned, '{"wifi_ssid": "a\\u0000b", "battery_pct": 61}')
    assert response.status_code == 200 and response.json()["ignored_fields"] == ["wifi_ssid"]
    for n, device in enumerate(others):
        assert post(client, device, json.dumps({"battery_pct": 70 + n, "wifi_ssid": "Depot"})).status_code == 200
    services.flush_heartbeats()  # the beat's next flush
    rows = {s.device_id: s for s in DeviceStatus.objects.filter(device__in=[d.device for d in (poisoned, *others)])}
    assert all(s.last_seen is not None and s.online for s in rows.values())
    assert rows[poisoned.device.pk].battery_pct == 61 and rows[poisoned.device.pk].wifi_ssid is None
    assert [rows[d.device.pk].battery_pct for d in others] == [70, 71]
    assert HeartbeatSample.objects.filter(device_id__in=rows).count() == 3
    assert queues_are_empty() and deadletters.count() == 0


def test_finding_1_a_nul_in_kids_is_dropped_and_the_fleet_flushes(client, device_in_group_a):
    poisoned, *others = three_devices(device_in_group_a)
    response = post(client, poisoned, '{"kids": ["k1\\u0000"], "battery_pct": 5}')
    assert response.json()["ignored_fields"] == ["kids"]
    for device in others:
        post(client, device, '{"kids": ["k1"], "battery_pct": 6}')
    services.flush_heartbeats()
    assert DeviceStatus.objects.filter(device__in=[d.device for d in (poisoned, *others)], last_seen__isnull=False).count() == 3
    assert DeviceStatus.objects.get(device=poisoned.device).kids == []
    assert queues_are_empty()


# Values that reach Redis without passing the edge (an older server, a hand edit, a bug): each
# makes PostgreSQL (or psycopg) refuse the batch statement.
POISON = {
    "nul-in-text": {"wifi_ssid": "a\x00b"},
    "lone-surrogate": {"foreground_app": "x\ud800"},
    "nul-in-jsonb": {"kids": ["k\x00"]},
    "out-of-range": {"battery_pct": 70_000},
    "ipv6-zone": {"ip_address": "fe80::1%wlan0"},
    "impossible-date": {"security_patch": "2024-02-30"},
}


@pytest.mark.parametrize("poison", POISON.values(), ids=POISON.keys())
def test_a_poisoned_state_injected_into_redis_is_set_aside_and_the_rest_of_its_batch_lands(client, device_in_group_a, poison):
    poisoned, *others = three_devices(device_in_group_a)
    for n, device in enumerate((poisoned, *others)):
        post(client, device, json.dumps({"battery_pct": 40 + n}))
    key = writebehind.state_key(poisoned.device.pk)
    redis().set(key, json.dumps({**json.loads(redis().get(key)), **poison}))  # bypassing the edge
    before = dead("heartbeat_state")
    services.flush_heartbeats()
    assert [DeviceStatus.objects.get(device=d.device).battery_pct for d in others] == [41, 42]
    assert DeviceStatus.objects.get(device=poisoned.device).battery_pct is None  # its state was set aside
    [letter] = deadletters.entries()
    assert letter["kind"] == "heartbeat_state" and letter["device_id"] == str(poisoned.device.pk)
    assert letter["reason"] and letter["size"] > 0 and "\x00" not in json.dumps(letter, ensure_ascii=False)
    assert dead("heartbeat_state") == before + 1
    assert redis().get(key) is None  # dropped, so the device's next heartbeat starts clean
    assert queues_are_empty()
    assert post(client, poisoned, '{"battery_pct": 44}').status_code == 200
    services.flush_heartbeats()
    assert DeviceStatus.objects.get(device=poisoned.device).battery_pct == 44
    assert deadletters.count() == 1  # never retried


def test_a_malformed_state_and_a_poisoned_sample_are_set_aside_too(client, device_in_group_a):
    poisoned, other, third = three_devices(device_in_group_a)
    for device in (poisoned, other, third):
        post(client, device, '{"battery_pct": 50, "network_type": "wifi"}')
    redis().set(writebehind.state_key(poisoned.device.pk), b'{"last_seen": "1", "wifi_ssid": "\xed\xa0\x80"}')
    now = int(timezone.now().timestamp() * 1e6)
    redis().rpush(writebehind._key("hist"), json.dumps([str(other.device.pk), str(now + 1), 1, None, None, None, None, "w\x00", None]))
    redis().rpush(writebehind._key("hist"), b"not json")
    services.flush_heartbeats()
    kinds = sorted(x["kind"] for x in deadletters.entries())
    assert kinds == ["heartbeat_sample", "heartbeat_sample", "heartbeat_state"]
    assert DeviceStatus.objects.filter(device__in=[other.device, third.device], battery_pct=50).count() == 2
    assert HeartbeatSample.objects.filter(device_id__in=[other.device.pk, third.device.pk]).count() == 2
    assert queues_are_empty()


def test_a_state_changed_after_the_flush_read_it_is_not_dropped(client, enrolled_device, monkeypatch):
    post(client, enrolled_device, '{"battery_pct": 1}')
    key = writebehind.state_key(enrolled_device.device.pk)
    redis().set(key, json.dumps({**json.loads(redis().get(key)), "wifi_ssid": "a\x00b"}))
    real_write = writebehind.write

    def heartbeat_meanwhile(claim, raw_states):
        result = real_write(claim, raw_states)
        post(client, enrolled_device, '{"battery_pct": 2}')  # lands between the read and the drop
        return result

    monkeypatch.setattr(writebehind, "write", heartbeat_meanwhile)
    services.flush_heartbeats()
    monkeypatch.undo()
    assert redis().get(key) is not None  # the newer state stays (and still carries the poison)
    services.flush_heartbeats()
    assert deadletters.count() == 2 and redis().get(key) is None  # set aside again, then dropped


def test_a_database_outage_is_no_entrys_fault_and_the_batch_waits_for_the_next_flush(client, enrolled_device, monkeypatch):
    post(client, enrolled_device, '{"battery_pct": 80, "bad_envelopes": 2}')
    other = enroll_for_test()
    post(client, other, '{"battery_pct": 81}')

    def away(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(writebehind, "_write_states", away)
    with pytest.raises(OperationalError):
        services.flush_heartbeats()
    monkeypatch.undo()
    assert deadletters.count() == 0
    assert writebehind.backlog()["claims"] == 0  # given back at once, not left to go stale
    services.flush_heartbeats()
    status = DeviceStatus.objects.get(device=enrolled_device.device)
    assert (status.battery_pct, status.bad_envelopes_total) == (80, 2)
    assert DeviceStatus.objects.get(device=other.device).battery_pct == 81


def test_the_common_case_writes_without_savepoints(client, enrolled_device, django_assert_num_queries):
    other = enroll_for_test()
    post(client, enrolled_device, '{"battery_pct": 20}')
    post(client, other, '{"battery_pct": 21}')
    # one transaction (a savepoint inside the test's own) with the UPDATE and the INSERT: nothing
    # for isolation until something fails
    with django_assert_num_queries(4) as captured:
        services.flush_heartbeats()
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    assert statements == ["SAVEPOINT", "UPDATE", "INSERT", "RELEASE"]


def test_dead_letters_keep_the_newest_ten_thousand():
    letters = [deadletters.letter("result", f"entry {n}".encode(), "test") for n in range(deadletters.MAX_LETTERS + 5)]
    deadletters.record(letters)
    assert deadletters.count() == deadletters.MAX_LETTERS
    assert deadletters.entries(limit=1)[0]["entry"] == f"entry {deadletters.MAX_LETTERS + 4}"
    assert deadletters.purge() == deadletters.MAX_LETTERS and deadletters.count() == 0


def test_a_dead_letter_holds_its_entry_escaped_and_cut():
    raw = b'{"a": "\x00' + b"z" * 9000 + b'"}'
    x = deadletters.letter("heartbeat_state", raw, ValueError("bad \x00 value"), device_id="d")
    assert "\x00" not in x.entry and x.entry.startswith('{"a": "\\u0000zz') and x.entry.endswith("z…")
    assert len(x.entry) == deadletters.MAX_ENTRY_CHARS + len("\\u0000") - 1 + len("…")  # cut, then escaped
    assert x.size == len(raw) and x.reason == "ValueError: bad \\u0000 value"
