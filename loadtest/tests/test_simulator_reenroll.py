"""The fleet simulator against the real server (PROTOCOL.md v1.1): a fleet that lost its state
(a factory reset) is refused with request ids, waits, and enrolls once an admin approves; two
independent implementations of the protocol agree."""

import asyncio
import time

import pytest

from loadtest.simulator import Fleet

pytestmark = [pytest.mark.live]


def test_a_reset_fleet_waits_for_approval_then_re_enrolls_as_the_same_devices(live_server_proc, admin_user):
    from enrollment.models import ReenrollRequest
    from enrollment.services.keys import create_enrollment_key
    from enrollment.services.reenroll import approve_reenroll_request

    key = create_enrollment_key(actor=admin_user, name="sim").raw

    async def first_life() -> dict:
        async with Fleet(base_url=live_server_proc.url, enroll_key=key, devices=3, duration=20, interval=1) as fleet:
            await fleet.enroll_all()
            for device in fleet.devices:  # their tokens in use: a later enroll is a re-enrollment
                await fleet.heartbeat(device, scheduled=time.monotonic())
            return {d.hardware_id: d.device_id for d in fleet.devices}

    async def second_life() -> Fleet:
        async with Fleet(base_url=live_server_proc.url, enroll_key=key, devices=3, duration=30, refused_retry_s=0.3) as fleet:
            enrolling = asyncio.create_task(fleet.enroll_all())
            deadline = time.monotonic() + 15
            while await asyncio.to_thread(lambda: ReenrollRequest.objects.filter(state="pending").count()) < 3:
                assert time.monotonic() < deadline, "no requests opened"
                await asyncio.sleep(0.2)
            assert not fleet.by_id  # nobody got in by knowing the serial and the key
            assert all(d.reenroll_request for d in fleet.devices)
            for device in fleet.devices:
                await asyncio.to_thread(approve_reenroll_request, actor=admin_user, request_id=device.reenroll_request)
            await asyncio.wait_for(enrolling, 20)
            return fleet

    before = asyncio.run(first_life())
    fleet = asyncio.run(second_life())
    assert {d.hardware_id: d.device_id for d in fleet.devices} == before
    assert all(d.reenroll_request is None for d in fleet.devices)
    assert fleet.stats.counters["reenroll_requests"] == 3 and fleet.enroll_failures == 0
    assert set(ReenrollRequest.objects.values_list("state", flat=True)) == {"used"}
