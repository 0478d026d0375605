"""A Celery worker SIGKILLed in the middle of the heartbeat flush, of the result flush, and a
dispatcher SIGKILLed in the middle of a fan-out to FCM: every entry and every delivery still lands,
exactly once.

"In the middle" is made certain, not left to timing: the test holds a lock on the table the flush
writes (LOCK ... IN SHARE MODE: reads go on, writes wait), sends the entries, waits until
pg_stat_activity shows the flush's statement waiting on that lock (the flush has taken its batch
from Redis and is writing it), then kills the worker's whole process group and releases the lock;
the killed session's transaction is rolled back. For the dispatcher, the FCM stand-in answers
slowly and the kill comes while its sends are in flight."""

import asyncio
import json
import time

import pytest

from tests.faults.conftest import DEVICES, SETTLE_S
from tests.faults.phones import Phones

pytestmark = [pytest.mark.live, pytest.mark.slow]


class TableLock:
    """A transaction holding SHARE locks on tables of the private database."""

    def __init__(self, stack, *tables: str):
        self.stack, self.tables = stack, tables

    def __enter__(self):
        from tests.faults.stack import DATABASE

        self.conn = self.stack.pg.connect(DATABASE, autocommit=False)
        self.conn.execute(f"LOCK TABLE {', '.join(self.tables)} IN SHARE MODE")
        return self

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


def _wait_for_writer_blocked_on(stack, table: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = stack.sql(
            "SELECT left(query, 120) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE %s",
            [f"%{table}%"])
        if rows:
            return rows[0][0]
        time.sleep(0.1)
    raise AssertionError(f"no flush started writing {table} within {timeout:g} s (worker log:\n{stack.tail('worker')})")


def test_a_worker_killed_mid_heartbeat_flush_loses_no_heartbeat_and_counts_none_twice(production, report):
    async def scenario():
        async with Phones(production, DEVICES, "hb-flush-kill", bad_envelopes=1) as phones:
            await phones.enroll_all()
            with TableLock(production, "devices_devicestatus", "devices_heartbeatsample"):
                # Three heartbeats each within a second or two: one history sample each (the first),
                # three bad envelopes each, the third's sequence number as the device's status.
                for _ in range(3):
                    await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
                blocked = await asyncio.to_thread(_wait_for_writer_blocked_on, production, "devices_devicestatus")
                await asyncio.sleep(0.5)  # any other flush of the beat's, too, has taken what is left
                await asyncio.to_thread(production.kill, "worker")
            await asyncio.to_thread(production.start_again, "worker")
            def samples_per_device() -> dict:
                return dict(production.sql("SELECT device_id::text, count(*) FROM devices_heartbeatsample "
                                           "WHERE device_id = ANY(%s::uuid[]) GROUP BY 1", [phones.device_ids]))

            counts = await phones.settle_heartbeats(SETTLE_S, also=lambda: len(samples_per_device()) == len(phones.phones))
            per_device = await asyncio.to_thread(samples_per_device)
            counts.update({
                "killed while": blocked,
                # Where the lost ones are, if any: still in Redis as the device's latest state, but no
                # longer marked for a flush (taken by the killed one).
                "states in Redis newer than PostgreSQL": await asyncio.to_thread(_newer_in_redis, production, phones),
                "history samples expected": len(phones.phones),
                "history samples stored": sum(per_device.values()),
                "devices with other than one sample": sum(1 for p in phones.phones if per_device.get(p.device_id, 0) != 1),
            })
            return phones, counts

    phones, counts = asyncio.run(scenario())
    report(counts)
    assert phones.problems == {}, phones.problem_summary()
    assert counts["answered 503"] == 0 and counts["other answers"] == {}, counts
    assert counts["lost"] == 0, counts
    assert counts["bad_envelopes stored"] == counts["bad_envelopes acknowledged"], counts
    assert counts["devices with other than one sample"] == 0, counts


def test_a_worker_killed_mid_result_flush_loses_no_result(production, report):
    async def scenario():
        async with Phones(production, DEVICES, "result-flush-kill") as phones:
            await phones.enroll_all()
            # One heartbeat each first: a device with a clean command marker gets the pushed
            # command's answer cached, so its report is queued in Redis (commands.results).
            await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
            command_id = await asyncio.to_thread(production.issue, phones.device_ids)
            await asyncio.to_thread(_wait_for_deliveries, production, command_id, "sent", len(phones.phones))
            queued_before = production.redis.client().llen("faults:cmd:results")
            with TableLock(production, "commands_delivery"):
                await phones.take_pushes()  # each device runs it and reports
                deadline = time.monotonic() + 30
                while len(phones.tasks) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                blocked = await asyncio.to_thread(_wait_for_writer_blocked_on, production, "commands_delivery")
                await asyncio.sleep(0.5)
                await asyncio.to_thread(production.kill, "worker")
            await asyncio.to_thread(production.start_again, "worker")
            counts = await _settle_deliveries(phones, [command_id])
            counts["killed while"] = blocked
            counts["queue before the reports"] = queued_before
            counts["queue after"] = production.redis.client().llen("faults:cmd:results")
            return phones, counts

    phones, counts = asyncio.run(scenario())
    report(counts)
    assert phones.problems == {}, phones.problem_summary()
    assert counts["reports answered 200"] == counts["deliveries"], counts
    assert counts["lost"] == 0, counts
    assert counts["delivery rows"] == counts["deliveries"], counts


def test_a_dispatcher_killed_mid_fan_out_still_delivers_every_command_exactly_once(production, report):
    async def scenario():
        async with Phones(production, DEVICES, "dispatch-kill") as phones:
            await phones.enroll_all()
            await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
            production.standin.config(latency_ms=1500)  # each send takes 1.5 s: the kill lands mid-send
            requests_before = production.standin.stats().get("requests", 0)
            command_id = await asyncio.to_thread(production.issue, phones.device_ids)
            deadline = time.monotonic() + 20
            while production.standin.stats().get("requests", 0) == requests_before:
                assert time.monotonic() < deadline, f"the fan-out never reached FCM:\n{production.tail('dispatcher')}"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(production.kill, "dispatcher")
            claimed = await asyncio.to_thread(production.sql,
                                              "SELECT push_status, count(*) FROM commands_delivery WHERE command_id = %s GROUP BY 1",
                                              [command_id])
            production.standin.config(latency_ms=0)
            await asyncio.to_thread(production.start_again, "dispatcher")
            # The devices go on as devices do: pushes as they arrive, a heartbeat every few seconds.
            counts = await _settle_deliveries(phones, [command_id], heartbeat_every_s=2)
            counts["push states when killed"] = dict(claimed)
            return phones, counts

    phones, counts = asyncio.run(scenario())
    report(counts)
    assert phones.problems == {}, phones.problem_summary()
    assert counts["received"] == counts["deliveries"], counts
    assert counts["runs"] == counts["deliveries"], counts
    assert counts["delivery rows"] == counts["deliveries"], counts
    assert counts["lost"] == 0 and counts["not final"] == 0, counts


def _newer_in_redis(stack, phones) -> int:
    client = stack.redis.client()
    stored = dict(stack.sql("SELECT device_id::text, COALESCE(uptime_s, 0) FROM devices_devicestatus WHERE device_id = ANY(%s::uuid[])",
                            [phones.device_ids]))
    states = client.mget([f"faults:hb:s:{p.device_id}" for p in phones.phones])
    newer = 0
    for phone, raw in zip(phones.phones, states):
        state = json.loads(raw) if raw else {}
        if int(state.get("uptime_s") or 0) > stored.get(phone.device_id, 0):
            newer += 1
    return newer


def _wait_for_deliveries(stack, command_id: str, state: str, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.sql("SELECT count(*) FROM commands_delivery WHERE command_id = %s AND state = %s", [command_id, state])[0][0] >= n:
            return
        time.sleep(0.2)
    raise AssertionError(f"deliveries of {command_id} not all {state} after {timeout:g} s:\n{stack.tail('dispatcher')}")


async def _settle_deliveries(phones: Phones, command_ids: list[str], heartbeat_every_s: float = 0) -> dict:
    """Until every delivery answered 200 is final in PostgreSQL (or SETTLE_S is over); the devices
    take their pushes meanwhile and, if asked, heartbeat (the pull path)."""
    deadline = time.monotonic() + SETTLE_S
    last_beat = 0.0
    while True:
        await phones.take_pushes()
        if heartbeat_every_s and time.monotonic() - last_beat >= heartbeat_every_s:
            last_beat = time.monotonic()
            await asyncio.gather(*(phones.heartbeat(p) for p in phones.phones))
        counts = await asyncio.to_thread(phones.delivery_counts, command_ids)
        done = counts["reports answered 200"] == counts["deliveries"] and counts["lost"] == 0
        if (done and not phones.tasks) or time.monotonic() > deadline:
            counts["settle_s"] = round(SETTLE_S - max(0.0, deadline - time.monotonic()), 1)
            return counts
        await asyncio.sleep(0.5)
