"""install_apk for real against the real server: simulated devices download a release from GET
/api/v1/device/apks/<id>/download (cut mid-transfer and resumed with Range), check its SHA-256,
install it into their app map, re-send their inventory and report; a downgrade is refused as
Android 14 refuses it; the Fleet's failure rule fails exactly the installs it names."""

import asyncio
import time

import httpx
import pytest

from loadtest.simulator import Fleet

pytestmark = [pytest.mark.live]

FIELDAPP = "com.example.fieldapp"


@pytest.fixture
def admin_jwt(apk_server, admin_user) -> dict:
    token = httpx.post(f"{apk_server.url}/api/v1/auth/token",
                       json={"username": admin_user.username, "password": "correct-horse-battery-staple"}).json()["access"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def enroll_key(admin_user) -> str:
    from enrollment.services.keys import create_enrollment_key

    return create_enrollment_key(actor=admin_user, name="sim-install").raw


def run_installs(server, key, jwt, installs, *, devices: int, prepare=None, **fleet_kwargs) -> tuple[Fleet, list[str]]:
    """Enrolls `devices` simulated devices; `prepare(fleet)` may set their installed apps; then each
    (release, device indexes) of `installs` is issued through the admin API, and the fleet
    heartbeats until every delivery's result is acknowledged. Returns the fleet and command ids."""

    async def go():
        async with Fleet(base_url=server.url, enroll_key=key, devices=devices, duration=120, interval=1,
                         exec_scale=0.01, **fleet_kwargs) as fleet:
            await fleet.enroll_all()
            assert len(fleet.by_id) == devices
            if prepare:
                prepare(fleet)
            command_ids, expected = [], 0
            async with httpx.AsyncClient(base_url=server.url, headers=jwt, timeout=30) as admin:
                for release, indexes in installs:
                    answer = await admin.post("/api/v1/commands", json={
                        "type": "install_apk", "params": {"apk_id": str(release.id)},
                        "target": {"device_ids": [fleet.devices[i].device_id for i in indexes]}})
                    assert answer.status_code == 201, answer.text
                    command_ids.append(answer.json()["id"])
                    expected += len(indexes)
            loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices))
            deadline = time.monotonic() + 60
            while len({who for _, kind, who in fleet.events if kind == "acked"}) < expected:
                assert time.monotonic() < deadline, f"results acknowledged: {fleet.stats.counters}"
                await asyncio.sleep(0.1)
            fleet.stop_at = time.monotonic()
            await loops
            return fleet, command_ids

    return asyncio.run(go())


def final_deliveries(command_id: str, count: int) -> dict:
    """hardware id -> its delivery, once PostgreSQL holds `count` final ones (results reach it
    with the write-behind's flush, a second or so after they were acknowledged)."""
    from commands.models import Delivery

    deadline = time.monotonic() + 15
    while True:
        rows = list(Delivery.objects.filter(command_id=command_id, state__in=["succeeded", "failed", "rejected"])
                    .select_related("device"))
        if len(rows) >= count or time.monotonic() > deadline:
            return {d.device.hardware_id: d for d in rows}
        time.sleep(0.2)


def inventory(hardware_id: str) -> dict[str, int]:
    from devices.models import InstalledApp

    return dict(InstalledApp.objects.filter(device__hardware_id=hardware_id).values_list("package", "version_code"))


def test_every_download_resumes_after_its_cut_and_every_device_installs_and_reports(apk_server, admin_jwt, enroll_key,
                                                                                 make_release):
    release = make_release("app-v11")
    fleet, (command_id,) = run_installs(apk_server, enroll_key, admin_jwt, [(release, range(4))], devices=4,
                                        download_cut_rate=1.0)

    counters = fleet.stats.counters
    assert counters["apk_download_cut"] == 4 and counters["apk_resumed"] == 4  # each cut, then continued by Range
    assert counters["apk_restarted"] == 0 and counters["apk_checksum_mismatch"] == 0
    assert counters["apk_checksum_ok"] == 4 and counters["apk_installed"] == 4
    assert len(fleet.installer.downloads) == 4
    for download in fleet.installer.downloads:
        assert download["sha256"] == release.sha256 and download["bytes"] == release.size
        assert download["cuts"] == 1 and download["resumes"] == 1
    assert {d.hardware_id: d.installed[FIELDAPP] for d in fleet.devices} == {d.hardware_id: 11 for d in fleet.devices}

    deliveries = final_deliveries(command_id, 4)
    assert {h: d.state for h, d in deliveries.items()} == {d.hardware_id: "succeeded" for d in fleet.devices}
    assert {d.output for d in deliveries.values()} == {f"installed {FIELDAPP} version code 11"}
    for device in fleet.devices:
        apps = inventory(device.hardware_id)
        assert apps[FIELDAPP] == 11 and apps["com.example.kiosk"] == 1  # the new app beside the seeded ones


def test_a_lower_version_code_is_refused_and_an_equal_or_higher_one_installs(apk_server, admin_jwt, enroll_key,
                                                                          make_release):
    release = make_release("app-v11")

    def before(fleet):  # as installed earlier: a newer build, the same one, an older one
        for device, code in zip(fleet.devices, (12, 11, 10)):
            device.installed[FIELDAPP] = code

    fleet, (command_id,) = run_installs(apk_server, enroll_key, admin_jwt, [(release, range(3))], devices=3,
                                        prepare=before)
    newer, same, older = fleet.devices
    deliveries = final_deliveries(command_id, 3)
    refused = deliveries[newer.hardware_id]
    assert refused.state == "failed"
    assert refused.error.startswith("INSTALL_FAILED_VERSION_DOWNGRADE")
    assert "version code 11 is older than current 12" in refused.error
    assert newer.installed[FIELDAPP] == 12
    assert deliveries[same.hardware_id].state == "succeeded" and deliveries[older.hardware_id].state == "succeeded"
    assert (same.installed[FIELDAPP], older.installed[FIELDAPP]) == (11, 11)
    assert fleet.stats.counters["apk_refused"] == 1 and fleet.stats.counters["apk_installed"] == 2
    assert FIELDAPP not in inventory(newer.hardware_id)  # its inventory was never re-sent with 11
    assert inventory(older.hardware_id)[FIELDAPP] == 11


def test_a_failure_rule_by_package_fails_that_release_and_leaves_another_alone(apk_server, admin_jwt, enroll_key,
                                                                             make_release):
    failing, other = make_release("app-v11"), make_release("legacy-v1-only")
    fleet, (failing_id, other_id) = run_installs(apk_server, enroll_key, admin_jwt,
                                                 [(failing, range(2)), (other, range(2))], devices=2,
                                                 install_failures={FIELDAPP: 1.0})
    assert {d.state for d in final_deliveries(failing_id, 2).values()} == {"failed"}
    assert {d.error.split(":")[0] for d in final_deliveries(failing_id, 2).values()} == {"INSTALL_FAILED_INTERNAL_ERROR"}
    assert {d.state for d in final_deliveries(other_id, 2).values()} == {"succeeded"}
    assert all(FIELDAPP not in d.installed and d.installed["com.example.legacy"] == 3 for d in fleet.devices)
    assert fleet.stats.counters["apk_checksum_ok"] == 4  # the failing ones downloaded fine: the install failed


def test_a_failure_rule_callable_fails_exactly_the_devices_it_picks(apk_server, admin_jwt, enroll_key, make_release):
    release = make_release("app-v12")

    def storage_full_on_even(device, payload):
        return "INSTALL_FAILED_INSUFFICIENT_STORAGE" if device.index % 2 == 0 else None

    fleet, (command_id,) = run_installs(apk_server, enroll_key, admin_jwt, [(release, range(4))], devices=4,
                                        install_failures=storage_full_on_even)
    states = {h: (d.state, d.error) for h, d in final_deliveries(command_id, 4).items()}
    assert states == {d.hardware_id: ("failed", "INSTALL_FAILED_INSUFFICIENT_STORAGE") if d.index % 2 == 0
                      else ("succeeded", "") for d in fleet.devices}
