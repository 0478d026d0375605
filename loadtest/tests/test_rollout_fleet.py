"""A staged rollout end to end: simulated devices that really download and install (loadtest),
the live server's own beat advancing the waves, a wave whose installs fail on a third of its
devices halting the rollout, and a roll back (uninstall, then the previous release) bringing the
devices that got the new version back to the old one."""

import asyncio
import time

import httpx
import pytest

from loadtest.simulator import Fleet

pytestmark = [pytest.mark.live, pytest.mark.slow]

FIELDAPP = "com.example.fieldapp"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


async def _in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def test_a_failing_wave_halts_the_rollout_and_a_roll_back_restores_the_old_version(apk_server, admin_user, make_release):
    from apks.models import Rollout, RolloutDevice
    from commands.models import Delivery
    from enrollment.services.keys import create_enrollment_key

    v10, v11 = make_release("app-v10"), make_release("app-v11")
    key = create_enrollment_key(actor=admin_user, name="rollout-fleet").raw
    jwt = httpx.post(f"{apk_server.url}/api/v1/auth/token",
                     json={"username": admin_user.username, "password": "correct-horse-battery-staple"}).json()["access"]
    admin = httpx.Client(base_url=apk_server.url, headers={"Authorization": f"Bearer {jwt}"}, timeout=30)
    failing: set[str] = set()

    def install_outcome(device, payload):  # PackageManager failing on exactly these devices
        return "INSTALL_FAILED_INSUFFICIENT_STORAGE" if device.device_id in failing else None

    async def go():
        async with Fleet(base_url=apk_server.url, enroll_key=key, devices=20, duration=300, interval=1, exec_scale=0.01,
                         failure_rate=0.0, install_failures=install_outcome) as fleet:
            await fleet.enroll_all()
            for device in fleet.devices:
                device.installed[FIELDAPP] = 10
            loops = asyncio.gather(*(fleet.heartbeat_loop(d) for d in fleet.devices))
            try:
                answer = await _in_thread(lambda: admin.post(f"/api/v1/apks/{v11.id}/deploy", json={
                    "target": {"all": True}, "rollout": {"waves": [10, 50, 100], "soak_s": 0, "threshold_pct": 10}}))
                assert answer.status_code == 201, answer.text
                rollout_id = answer.json()["rollout"]["id"]
                second = [str(d) for d in await _in_thread(lambda: list(
                    RolloutDevice.objects.filter(rollout_id=rollout_id, wave=1).values_list("device_id", flat=True)))]
                assert len(second) == 8
                failing.update(second[:3])  # 3 of 8 = 37.5% > 10%
                halted = await _in_thread(wait_for, lambda: Rollout.objects.filter(pk=rollout_id, state="halted").first(),
                                          90, "the rollout to halt")
                assert "Wave 2 (50%): 3 of 8 installs failed" in halted.reason
                body = (await _in_thread(lambda: admin.get(f"/api/v1/rollouts/{rollout_id}"))).json()
                assert [w["state"] for w in body["waves"]] == ["passed", "halted", "pending"]
                assert body["waves"][0]["stats"]["succeeded"] == 2 and body["waves"][1]["stats"]["succeeded"] == 5
                by_id = {d.device_id: d for d in fleet.devices}
                assert all(by_id[d].installed[FIELDAPP] == 10 for d in second[:3])
                got = [d for d, dev in by_id.items() if dev.installed.get(FIELDAPP) == 11]
                assert len(got) == 7  # wave 1's two and wave 2's five; wave 3 never started

                answer = await _in_thread(lambda: admin.post(f"/api/v1/rollouts/{rollout_id}/rollback",
                                                             json={"confirm_data_loss": True}))
                assert answer.status_code == 200 and answer.json()["state"] == "rolled_back", answer.text

                def all_final():
                    rows = Delivery.objects.filter(command_id__in=answer.json()["rollback_command_ids"])
                    return rows.count() == 14 and not rows.exclude(state__in=["succeeded", "failed", "rejected"]).exists()

                await _in_thread(wait_for, all_final, 60, "the roll back's deliveries")
                states = await _in_thread(lambda: set(Delivery.objects.filter(
                    command_id__in=answer.json()["rollback_command_ids"]).values_list("state", flat=True)))
                assert states == {"succeeded"}
                assert {d: by_id[d].installed.get(FIELDAPP) for d in got} == {d: 10 for d in got}
                assert all(by_id[d].installed[FIELDAPP] == 10 for d in by_id)
            finally:
                fleet.stop_at = time.monotonic()
                await loops

    asyncio.run(go())
