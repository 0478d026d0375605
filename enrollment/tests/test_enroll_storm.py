"""The storm: 500 devices enroll at once against a live server (daphne, PostgreSQL, Redis).
Every device ends enrolled exactly once, nothing answers 5xx; clients retry on 429/503 honoring
Retry-After, as PROTOCOL.md asks of them."""

import asyncio
import random
from collections import Counter

import httpx
import pytest

from devices.models import Device, DeviceStatus
from enrollment.services import keys as services
from enrollment.models import EnrollmentKey
from tests.live import LiveServer, env_for_test_database

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEVICES = 500


@pytest.fixture
def storm_server(transactional_db, settings, tmp_path, monkeypatch):
    # A small registration queue, so the storm really queues (and some clients get 503 busy).
    monkeypatch.setenv("ENROLL_CONCURRENCY", "4")
    monkeypatch.setenv("ENROLL_QUEUE_WAIT_S", "0.5")
    server = LiveServer(env_for_test_database(settings), log_path=tmp_path / "live-server.log")
    server.start()
    yield server
    server.stop()


async def _enroll_until_done(client, url, key, hardware_id, statuses, deadline):
    while True:
        try:
            response = await client.post(url, json={"hardware_id": hardware_id, "model": "Storm"}, headers={"X-Admin-Key": key})
        except httpx.TransportError:
            # A connection dropped under the burst: the answer may have been lost after the
            # device was created, which is exactly what retry safety is for.
            statuses["transport_error"] += 1
            assert asyncio.get_running_loop().time() < deadline, "storm did not drain in time"
            await asyncio.sleep(random.uniform(0.5, 2.0))
            continue
        statuses[response.status_code] += 1
        if response.status_code in (429, 503):
            assert "Retry-After" in response.headers
            wait = float(response.headers["Retry-After"])
            assert asyncio.get_running_loop().time() + wait < deadline, "storm did not drain in time"
            await asyncio.sleep(wait * random.uniform(0.5, 1.5))
            continue
        return hardware_id, response.status_code, response.json()


async def _storm(url, key):
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=DEVICES, max_keepalive_connections=DEVICES)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=limits) as client:
        deadline = asyncio.get_running_loop().time() + 540
        results = await asyncio.gather(
            *(_enroll_until_done(client, url, key, f"STORM-{i:04d}", statuses, deadline) for i in range(DEVICES))
        )
    return results, statuses


def test_500_concurrent_enrollments_each_enroll_exactly_once(storm_server):
    key = services.create_enrollment_key(actor=None, name="storm", max_uses=DEVICES).raw
    results, statuses = asyncio.run(_storm(storm_server.url + "/api/v1/enroll", key))

    # 503 is the queue's "busy" (with Retry-After), which clients honour; no other 5xx.
    assert not [code for code in statuses if isinstance(code, int) and code >= 500 and code != 503], statuses
    assert all(code == 201 for _, code, _ in results), Counter(code for _, code, _ in results)
    device_ids = {body["device_id"] for _, _, body in results}
    assert len(device_ids) == DEVICES
    assert Device.objects.filter(hardware_id__startswith="STORM-").count() == DEVICES
    assert DeviceStatus.objects.filter(device__hardware_id__startswith="STORM-").count() == DEVICES
    assert EnrollmentKey.objects.get().uses == DEVICES
    by_hw = dict(Device.objects.values_list("hardware_id", "id"))
    assert all(str(by_hw[hw]) == body["device_id"] for hw, _, body in results)
    print(f"storm answers: {dict(statuses)}")
