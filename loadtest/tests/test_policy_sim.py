"""The fleet simulator's policy channel (PROTOCOL.md v1.1): the document verified like an envelope,
each item applied to the simulated Device Owner as the headless Java agent applies it (its
refusals and reasons), and, against a live server, fetch, verify, apply and report, a bad
signature never applied, a version change picked up on the next heartbeat and on a `sync` push."""

import asyncio
import json
import time

import httpx
import pytest

from commands.signing import sign
from loadtest.simulator import (
    BadEnvelope,
    DeviceOwner,
    Fleet,
    PolicyForAnotherDevice,
    apply_items,
    verify_policy,
)

PASSWORD = "correct-horse-battery-staple"  # the root conftest's personas
KEY = b"p" * 32
DEVICE_ID = "11111111-1111-4111-8111-111111111111"
INSTALLED = {"com.example.kiosk": 1, "com.android.chrome": 1}


def _signed(document: dict, kid: str = "k1", key: bytes = KEY) -> dict:
    text = json.dumps(document, separators=(",", ":"))
    return {"policy": text, "kid": kid, "sig": sign(key, text)}


def _no_installs(spec):
    raise AssertionError(f"nothing should be installed here ({spec})")


def _apply(items: dict, owner: DeviceOwner | None = None, previous: dict | None = None) -> dict:
    return asyncio.run(apply_items(items, previous or {}, owner or DeviceOwner(), dict(INSTALLED), _no_installs))


# --- verification ------------------------------------------------------------------------------
def test_a_policy_signed_with_the_devices_key_verifies_whatever_the_hex_case():
    answer = _signed({"device_id": DEVICE_ID, "version": 7, "issued_at": 1764086400, "items": {"settings": {}}})
    text, document = verify_policy(answer, {"k1": KEY}, device_id=DEVICE_ID)
    assert text == answer["policy"] and document["version"] == 7
    assert verify_policy({**answer, "sig": answer["sig"].upper()}, {"k1": KEY}, device_id=DEVICE_ID)[1]["version"] == 7


@pytest.mark.parametrize("change", [
    {"policy": '{"device_id":"11111111-1111-4111-8111-111111111111","version":8,"issued_at":1764086400,"items":{}}'},
    {"kid": "k9"},
    {"sig": "00" * 32},
    {"sig": "not hex"},
])
def test_a_tampered_policy_or_one_under_an_unknown_kid_is_bad(change):
    answer = _signed({"device_id": DEVICE_ID, "version": 7, "issued_at": 1764086400, "items": {}})
    with pytest.raises(BadEnvelope):
        verify_policy({**answer, **change}, {"k1": KEY}, device_id=DEVICE_ID)


def test_a_signed_text_that_is_not_a_policy_document_is_bad():
    with pytest.raises(BadEnvelope):
        verify_policy(_signed({"device_id": DEVICE_ID, "version": "7", "items": {}}), {"k1": KEY}, device_id=DEVICE_ID)


def test_another_devices_policy_is_refused_by_rule_2():
    other = _signed({"device_id": "22222222-2222-4222-8222-222222222222", "version": 3, "items": {"kiosk": {}}})
    with pytest.raises(PolicyForAnotherDevice) as caught:
        verify_policy(other, {"k1": KEY}, device_id=DEVICE_ID)
    assert caught.value.document["version"] == 3


# --- applying, as the Java agent's SimulatedPolicy --------------------------------------------
def test_supported_items_change_the_device_owner_state():
    owner = DeviceOwner()
    states = _apply({
        "kiosk": {"package": "com.example.kiosk", "lock_task": True, "relaunch": True, "status_bar": False},
        "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 600},
        "restrictions": ["no_factory_reset", "no_debugging_features"],
        "system_update": {"type": "windowed", "window_start_min": 120, "window_end_min": 240,
                          "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
        "wifi": [{"id": "w1", "ssid": "Shop", "security": "wpa2", "password": "correct horse", "hidden": False}],
        "shell_allowlist": [["getprop"]],
        "apps": {"required": [], "blocked": ["com.android.chrome"]},
    }, owner)
    assert {s["state"] for s in states.values()} == {"applied"}
    assert owner.lock_task_active and owner.lock_task_packages == ["com.example.kiosk", "dev.mdm.agent"]
    assert owner.persistent_home == "com.example.kiosk/.MainActivity"
    assert owner.global_settings["stay_on_while_plugged_in"] == "7"
    assert owner.system_settings["screen_off_timeout"] == "600000"
    assert owner.restrictions == {"no_factory_reset", "no_debugging_features"}
    assert owner.wifi == {"w1": {"ssid": "Shop", "security": "wpa2", "hidden": False}}  # never the passphrase
    assert owner.hidden == {"com.android.chrome"} and owner.shell_allowlist == [["getprop"]]


def test_a_changed_restriction_list_clears_the_restrictions_it_no_longer_lists():
    owner = DeviceOwner()
    _apply({"restrictions": ["no_factory_reset", "no_camera"]}, owner)
    _apply({"restrictions": ["no_camera"]}, owner, previous={"restrictions": ["no_factory_reset", "no_camera"]})
    assert owner.restrictions == {"no_camera"}


def test_what_a_device_owner_cannot_do_fails_with_the_agents_reason():
    owner = DeviceOwner()
    states = _apply({
        # time_zone is written once auto_time_zone is off (it goes first); a value out of range is refused.
        "settings": {"time_zone": "Europe/Paris", "auto_time_zone": False, "screen_off_timeout_s": 1},
        "restrictions": ["no_factory_reset", "no_such_thing"],
        "kiosk": {"package": "com.example.missing", "lock_task": True},
        "system_update": {"type": "postpone", "freeze_periods": [{"start": "01-01", "end": "04-30"}]},
        "apps": {"blocked": ["dev.mdm.agent"]},
        "location": {"mode": "high_accuracy"},
    }, owner)
    assert states["settings"] == {"state": "failed", "reason": "screen_off_timeout_s: must be an integer from 5 to 86400"}
    assert owner.global_settings["auto_time_zone"] == "0"  # what may be written is written
    assert owner.global_settings["dpm:time_zone"] == "Europe/Paris"
    assert states["restrictions"] == {"state": "failed", "reason": "not Android user restrictions: [no_such_thing]"}
    assert owner.restrictions == {"no_factory_reset"}
    assert states["kiosk"] == {"state": "failed", "reason": "com.example.missing is not installed"}
    assert not owner.lock_task_active
    assert states["system_update"]["reason"] == ("SystemUpdatePolicy.ValidationFailedException: "
                                                 "Freeze period 01-01..04-30 is too long: 120 days")
    assert "the Device Owner cannot hide itself" in states["apps"]["reason"]
    assert states["location"] == {"state": "unsupported", "reason": "this agent does not know the item location"}


def test_a_relaunching_kiosk_without_lock_task_needs_usage_access_which_the_device_owner_lacks():
    states = _apply({"kiosk": {"package": "com.example.kiosk", "lock_task": False, "relaunch": True}})
    assert states["kiosk"]["state"] == "failed" and "GET_USAGE_STATS" in states["kiosk"]["reason"]


def test_a_value_of_the_wrong_shape_fails_as_an_invalid_value():
    states = _apply({"restrictions": "no_factory_reset", "system_update": {"type": "windowed", "window_start_min": 1440},
                     "wifi": [{"ssid": "x", "security": "open"}]})
    assert states["restrictions"]["reason"] == "invalid value: restrictions must be an array of strings"
    assert states["system_update"]["reason"] == ("invalid value: system_update.window_start_min must be 0-1439 "
                                                 "(minutes after midnight)")
    assert states["wifi"]["reason"] == "invalid value: wifi[0] needs an id"


# --- against the live server ------------------------------------------------------------------
ITEMS = {
    "kiosk": {"package": "com.example.kiosk", "lock_task": True, "relaunch": True, "status_bar": False},
    "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 600},
    "restrictions": ["no_factory_reset", "no_debugging_features"],
}


class Admin:
    """The admin API of the live server, as automation uses it (JWT)."""

    def __init__(self, url: str, username: str):
        token = httpx.post(f"{url}/api/v1/auth/token", json={"username": username, "password": PASSWORD}).json()["access"]
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def create(self, name: str, items: dict) -> dict:
        r = self.client.post("/api/v1/policies", json={"name": name, "items": items})
        assert r.status_code == 201, r.text
        return r.json()

    def update(self, policy_id: str, items: dict) -> int:
        r = self.client.put(f"/api/v1/policies/{policy_id}", json={"items": items})
        assert r.status_code == 200, r.text
        return r.json()["version"]

    def assign(self, policy_id: str, device_ids: list[str]) -> None:
        r = self.client.post(f"/api/v1/policies/{policy_id}/assign", json={"target": {"device_ids": device_ids}})
        assert r.status_code == 200 and r.json()["target_count"] == len(device_ids), r.text

    def device(self, device_id: str) -> dict:
        return self.client.get(f"/api/v1/devices/{device_id}").json()


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _beat(fleet: Fleet, device) -> None:
    """One heartbeat, and whatever it made the policy channel do, to the end."""
    await fleet.heartbeat(device, scheduled=time.monotonic())
    if device.policy.task is not None:
        await asyncio.wait_for(device.policy.task, 20)


async def _reported(admin, device_id: str, version: int, timeout_s: float = 15) -> dict:
    """The device's policy block once the server holds its report of `version` (reports are
    queued and flushed each second: commands.policies.reports), or the last one seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        block = (await _in_thread(admin.device, device_id))["policy"]
        if block["applied_version"] == version or time.monotonic() > deadline:
            return block
        await asyncio.sleep(0.2)


def _enrollment_key(admin_user) -> str:
    from enrollment.services.keys import create_enrollment_key

    return create_enrollment_key(actor=admin_user, name="policy-sim").raw


@pytest.mark.live
def test_a_simulated_device_fetches_applies_and_reports_and_picks_up_each_new_version(live_server_proc, admin_user):
    key = _enrollment_key(admin_user)
    admin = Admin(live_server_proc.url, admin_user.username)

    async def go():
        async with Fleet(base_url=live_server_proc.url, enroll_key=key, devices=1, duration=60, interval=1) as fleet:
            await fleet.enroll_all()
            device = fleet.devices[0]
            await _beat(fleet, device)
            assert fleet.stats.counters["policy_fetched"] == 0  # no policy: the server's 0 is the device's 0

            created = await _in_thread(admin.create, "sim-kiosk", ITEMS)
            await _in_thread(admin.assign, created["id"], [device.device_id])
            await _beat(fleet, device)  # the answer's policy_version differs: fetch, verify, apply, report
            assert device.policy.version == created["version"]
            assert device.owner.lock_task_active and device.owner.system_settings["screen_off_timeout"] == "600000"
            assert device.owner.restrictions == {"no_factory_reset", "no_debugging_features"}
            block = await _reported(admin, device.device_id, created["version"])
            assert block["applied_version"] == created["version"] and block["compliant"] is True
            assert {s["state"] for s in block["items"].values()} == {"applied"}
            assert device.telemetry(fleet.rng)["policy_version"] == created["version"]

            # A changed version: the next heartbeat's answer carries it; a restriction it drops is cleared.
            v2 = await _in_thread(admin.update, created["id"], {**ITEMS, "restrictions": ["no_factory_reset"]})
            assert v2 > created["version"]
            await _beat(fleet, device)
            assert device.policy.version == v2 and device.owner.restrictions == {"no_factory_reset"}
            block = await _reported(admin, device.device_id, v2)
            assert block["applied_version"] == v2 and block["compliant"] is True

            # The sync push a policy change sends: fetched at once, no heartbeat needed.
            v3 = await _in_thread(admin.update, created["id"], {**ITEMS, "settings": {"screen_off_timeout_s": 120}})
            fleet.on_push(device, {"kind": "sync"})
            await asyncio.wait_for(device.policy.task, 20)
            assert device.policy.version == v3 and device.owner.system_settings["screen_off_timeout"] == "120000"
            assert fleet.stats.counters["policy_fetch_by_push"] == 1
            assert fleet.stats.counters["policy_fetch_by_heartbeat"] == 2
            block = await _reported(admin, device.device_id, v3)
            assert block["applied_version"] == v3 and block["compliant"] is True

            await _beat(fleet, device)  # the heartbeat now sends v3 and the server agrees: nothing to fetch
            assert fleet.stats.counters["policy_fetched"] == 3
            return device.device_id, v3

    device_id, v3 = asyncio.run(go())
    deadline = time.monotonic() + 30  # the heartbeat write-behind flushes every second
    while (status := admin.device(device_id)["status"]).get("policy_version") != v3:
        assert time.monotonic() < deadline, f"the heartbeat's policy_version never reached the server: {status}"
        time.sleep(0.2)
    assert status["lock_task_active"] is True and status["usage_access"] is False


@pytest.mark.live
def test_a_policy_whose_signature_fails_is_counted_and_never_applied_until_fresh_keys_verify_it(live_server_proc, admin_user):
    from devices.models import DevicePolicyState, DeviceStatus

    key = _enrollment_key(admin_user)
    admin = Admin(live_server_proc.url, admin_user.username)

    async def go():
        async with Fleet(base_url=live_server_proc.url, enroll_key=key, devices=2, duration=60, interval=1) as fleet:
            await fleet.enroll_all()
            forged, stale = fleet.devices
            for device in fleet.devices:
                await _beat(fleet, device)
            created = await _in_thread(admin.create, "sim-signed", ITEMS)
            await _in_thread(admin.assign, created["id"], [d.device_id for d in fleet.devices])
            # `forged` holds the wrong bytes under the right kid: what the server signs never verifies.
            forged.keys = {kid: b"x" * 32 for kid in forged.keys}
            # `stale` holds a key the server no longer has: its heartbeat's kids make the server send the set.
            stale.keys = {"k-retired": b"y" * 32}
            for device in fleet.devices:
                device.policy.fetch = True
                fleet.kick_policy(device)
                await asyncio.wait_for(device.policy.task, 20)
                assert device.bad_envelopes == 1 and device.policy.version == 0 and device.policy.status is None
                assert device.policy.refetch_after_heartbeat

            # The heartbeat reports the count and refreshes keys; the policy is fetched and verified once more.
            for device in fleet.devices:
                assert device.telemetry(fleet.rng)["bad_envelopes"] == 1
                await _beat(fleet, device)
            assert stale.policy.version == created["version"] and stale.owner.lock_task_active
            assert forged.bad_envelopes == 1 and forged.policy.version == 0 and not forged.owner.lock_task_active
            assert not forged.policy.refetch_after_heartbeat  # verified again once, then dropped
            assert fleet.stats.counters["policy_bad"] == 3 and fleet.stats.counters["policy_reported"] == 1

    asyncio.run(go())
    deadline = time.monotonic() + 15  # reports are queued and flushed each second (commands.policies.reports)
    while not DevicePolicyState.objects.filter(device__hardware_id="sim-000001", applied_version__isnull=False).exists():
        assert time.monotonic() < deadline, "the stale device's report never reached the server"
        time.sleep(0.2)
    forged, stale = (DevicePolicyState.objects.get(device__hardware_id=f"sim-{i:06d}") for i in range(2))
    assert forged.applied_version is None and forged.reported_at is None  # nothing reported against it
    assert stale.applied_version == stale.version and stale.all_applied

    deadline = time.monotonic() + 30  # the heartbeat write-behind flushes every second
    while DeviceStatus.objects.filter(device__hardware_id="sim-000000").values_list("bad_envelopes_total", flat=True).first() != 1:
        assert time.monotonic() < deadline, "the server never counted the bad policy"
        time.sleep(0.2)


def test_the_simulated_device_owner_takes_exactly_the_agents_settings_keys():
    """android-agent/core/src/test/resources/policy-settings.json is the contract the server and
    the Java agent are held to (tests/test_agent_contract.py); the Python simulator too."""
    import json
    from pathlib import Path

    from loadtest.simulator.owner import SETTINGS_ORDER, DeviceOwner, apply_settings

    contract = json.loads((Path(__file__).resolve().parents[2] / "android-agent/core/src/test/resources/policy-settings.json")
                          .read_text())["settings"]
    assert set(SETTINGS_ORDER) == set(contract)
    sample = {"bool": True, "int": 30, "time_zone": "Europe/Paris"}
    for key, spec in contract.items():
        value = sample[spec["type"]] if spec["type"] != "int" else spec["min"]
        settings = {key: value, "auto_time_zone": False} if key == "time_zone" else {key: value}
        assert apply_settings(DeviceOwner(), settings)["state"] == "applied", key
    refused = apply_settings(DeviceOwner(), {"time_zone": "Europe/Paris"})  # automatic time zone on
    assert refused["state"] == "failed" and "auto_time_zone" in refused["reason"]
    assert apply_settings(DeviceOwner(), {"airplane_mode": True}) == {
        "state": "unsupported", "reason": "not settings a Device Owner can change: airplane_mode"}
