"""FCM answering 429 (QUOTA_EXCEEDED) and then 503 (UNAVAILABLE) to every send for a while
(FAULT_FCM_OUTAGE_S: 15 s in `make test`, the issue's full minute in `make faults`), while commands
are issued and devices heartbeat: the pull path carries everything, every device gets every command
and runs it exactly once, and the pushes retried after the outage add nothing twice."""

import asyncio
import time

import pytest

from tests.faults.conftest import DEVICES, FCM_OUTAGE_S
from tests.faults.phones import Phones
from tests.faults.test_worker_killed import _settle_deliveries

pytestmark = [pytest.mark.live, pytest.mark.slow]

COMMANDS = 3
HEARTBEAT_S = 3.0  # a kiosk heartbeats every 30 s; shortened so the outage test stays short
AFTER_S = 10.0  # the dispatcher's retries come back after the outage (backoff 2, 4, 8 ... s)


def test_while_fcm_refuses_every_push_the_pull_path_brings_every_command_to_every_device_once(production, report):
    async def scenario():
        async with Phones(production, DEVICES, "fcm-outage") as phones:
            await phones.enroll_all()
            await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
            stats_before = production.standin.stats()
            delivered_before = stats_before.get("delivered", 0)
            production.standin.fail(error="QUOTA_EXCEEDED")
            started = time.monotonic()
            load = asyncio.create_task(phones.heartbeats(FCM_OUTAGE_S + AFTER_S, HEARTBEAT_S))
            consumer = asyncio.create_task(phones.consume_pushes(started + FCM_OUTAGE_S + AFTER_S))
            command_ids = []
            for i in range(COMMANDS):
                command_ids.append(await asyncio.to_thread(production.issue, phones.device_ids))
                await asyncio.sleep(FCM_OUTAGE_S / (2 * COMMANDS))
            await asyncio.sleep(max(0.0, started + FCM_OUTAGE_S / 2 - time.monotonic()))
            production.standin.fail(error="UNAVAILABLE")
            await asyncio.sleep(max(0.0, started + FCM_OUTAGE_S - time.monotonic()))
            during = production.standin.stats()
            production.standin.fail(error=None)
            await asyncio.gather(load, consumer)
            counts = await _settle_deliveries(phones, command_ids, heartbeat_every_s=HEARTBEAT_S)
            after = production.standin.stats()
            counts.update({
                "outage_s": FCM_OUTAGE_S,
                "FCM refusals (429)": during.get("error_QUOTA_EXCEEDED", 0) - stats_before.get("error_QUOTA_EXCEEDED", 0),
                "FCM refusals (503)": during.get("error_UNAVAILABLE", 0) - stats_before.get("error_UNAVAILABLE", 0),
                "pushes delivered during the outage": during.get("delivered", 0) - delivered_before,
                "pushes delivered after it": after.get("delivered", 0) - during.get("delivered", 0),
                "runs per device and command": sorted({p.executed[c] for p in phones.phones for c in command_ids}),
            })
            return phones, counts

    phones, counts = asyncio.run(scenario())
    report(counts)
    assert phones.problems == {}, phones.problem_summary()
    assert counts["FCM refusals (429)"] > 0 and counts["FCM refusals (503)"] > 0, "the outage never met a push"
    assert counts["pushes delivered during the outage"] == 0, counts
    assert counts["received"] == counts["deliveries"], counts
    assert counts["runs per device and command"] == [1], counts
    assert counts["delivery rows"] == counts["deliveries"], counts
    assert counts["lost"] == 0 and counts["not final"] == 0, counts
