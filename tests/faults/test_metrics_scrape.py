"""What a Prometheus scrape of the production set-up sees (mdm/metrics.py): `web` runs two granian
worker processes and a scrape reaches one of them, yet every scrape answers the sum over both; the
Celery `worker` and `dispatcher` serve their own /metrics (the offline sweep's gauge, the FCM
sends their pool processes made); none of them answers without the token."""

import asyncio
import re
import time

import httpx
import pytest

from tests.faults.phones import Phones

pytestmark = [pytest.mark.live, pytest.mark.slow]

PHONES = 6
ROUNDS = 3
SCRAPES = 8


def value(text: str, series: str) -> float:
    """The sample of one series (name and labels as exposed), 0 when it has none yet."""
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def wait_for(check, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_every_scrape_sums_the_processes_of_its_service(production):
    heartbeats = 'mdm_heartbeats_total{result="ok"}'
    before = {value(production.scrape("web"), heartbeats) for _ in range(SCRAPES)}
    assert len(before) == 1, f"scrapes of web disagree: {before}"
    fcm_ok = 'mdm_fcm_sends_total{outcome="ok"}'
    sent_before = value(production.scrape("dispatcher"), fcm_ok)

    async def scenario():
        async with Phones(production, PHONES, "metrics") as phones:
            await phones.enroll_all()
            for _ in range(ROUNDS):
                await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
            return phones

    phones = asyncio.run(scenario())
    answered = sum(len(p.acked) for p in phones.phones)
    assert answered == PHONES * ROUNDS
    # Each scrape on a new connection, answered by whichever worker process takes it: the same sum.
    after = [value(production.scrape("web"), heartbeats) for _ in range(SCRAPES)]
    assert after == [before.pop() + answered] * SCRAPES
    assert len(list(production.metrics_dir("web").glob("counter_*.db"))) >= 2  # both workers counted some

    # The worker's offline sweep (every 15 s) sets the fleet's online count in a pool process.
    online = wait_for(lambda: value(production.scrape("worker"), "mdm_devices_online") >= PHONES)
    assert online, production.scrape("worker")[-2000:]

    # A command to the phones: the dispatcher's pool processes push it, and its /metrics counts them.
    production.issue(phones.device_ids)
    pushed = wait_for(lambda: value(production.scrape("dispatcher"), fcm_ok) >= sent_before + PHONES)
    assert pushed, production.scrape("dispatcher")[-2000:]


@pytest.mark.parametrize("service", ["web", "worker", "dispatcher"])
def test_no_scrape_without_the_token(production, service):
    base = production.base_url if service == "web" else f"http://127.0.0.1:{production.metrics_ports[service]}"
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
    assert httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer not-the-token"}, timeout=10).status_code == 401
    assert httpx.get(f"{base}/metrics", headers={"X-Forwarded-For": "127.0.0.1"}, timeout=10).status_code == 401
    if service != "web":
        assert httpx.get(f"{base}/other", timeout=10).status_code == 404
