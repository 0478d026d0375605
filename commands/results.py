"""Result write-behind: a report of a command whose push answer is cached is queued in Redis by
the report's one Redis call, and a flusher writes each second's reports to PostgreSQL in one
statement.

Why (docs/performance.md, "Command fan-out"): a result POST that writes PostgreSQL itself is a
Redis call, a pool checkout, an `UPDATE` with its own commit and a pool return: ~0.7 ms of the
web's CPU and ~0.3 ms of a PostgreSQL backend's per report, and a fan-out to 2,000 devices ends
with 2,000 of them at once. Queued, a report costs the web about what a heartbeat does, and
PostgreSQL one `UPDATE ... FROM unnest(...)` per batch.

When a report is queued (commands.markers._REPORTED decides, atomically): the device's marker
is the cached answer of exactly this command (`pend:`), not expired. That marker is written only
while the delivery is pending (queued or sent) and is dropped by whatever ends that (a
cancellation, a key change, a report), so the delivery is the device's and any device status
moves it forward: the answer is the reported status, as the database would give. Every other
report (the marker unknown or another answer, no Redis, the write-behind switched off) is
applied at once by `services.record_result`, exactly as before.

What it costs, as the heartbeat's write-behind: the delivery in PostgreSQL trails the device's
answer by up to the flush interval (1 s; the cancel and expiry sweeps flush first, so they never
override a report the device already had answered), and a Redis crash loses at most that second
of reports (the compose file's Redis keeps an append-only file, fsync every second). A final
report once queued is the first final (PROTOCOL.md): a second report of the same command is
answered with it until the marker's TTL, even if a cancellation raced it in the database.

Keys: {CACHE_PREFIX}:cmd:results, a list of '<device id>|<entry JSON>' (see `entry`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from commands import live
from commands.models import FINAL_STATES, RANK, Delivery
from mdm import redis_client, sql
from mdm.metrics import DELIVERIES

FLUSH_BATCH = 5000
# A report larger than this (a long shell output) is applied at once instead: the queue's memory
# stays bounded (20,000 devices reporting at once: at most ~80 MB) and so does one flush's statement.
MAX_QUEUED_BYTES = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('LTRIM', KEYS[1], #items, -1)
return items
"""


def enabled() -> bool:
    """Redis configured, PostgreSQL behind (the flush statement is PostgreSQL's), not switched off."""
    return bool(settings.REDIS_URL) and connection.vendor == "postgresql" and getattr(settings, "RESULT_WRITE_BEHIND", True)


def key() -> str:
    return f"{settings.CACHE_PREFIX}:cmd:results"


def entry(*, command_id, status: str, now: datetime, exit_code=None, output=None, error=None, reason=None) -> str:
    """A validated report as the queue holds it (what record_result would write, already cut),
    or "" when it is too large to queue (see MAX_QUEUED_BYTES)."""
    from commands.services import final_fields

    data = {"c": str(command_id), "s": status, "at": int((now - _EPOCH) / timedelta(microseconds=1))}
    if status in FINAL_STATES:
        data.update(final_fields(exit_code, output, error, reason))
    text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= MAX_QUEUED_BYTES else ""


def _pick(reports: list[dict]) -> dict:
    """One delivery's queued reports, in arrival order: the first final wins, else the furthest."""
    finals = [r for r in reports if r["s"] in FINAL_STATES]
    return finals[0] if finals else max(reports, key=lambda r: RANK[r["s"]])


_RANK_SQL = " ".join(f"WHEN '{state}' THEN {rank}" for state, rank in RANK.items())


def _apply(chosen: list[tuple[str, dict]]) -> list[tuple]:
    """One UPDATE for the batch, with record_result's rules: forward moves only (rank below the
    report's), first final wins; timestamps are the reports' own."""
    table = sql.table(Delivery)
    columns = {
        "command_id": [r["c"] for _, r in chosen],
        "device_id": [d for d, _ in chosen],
        "status": [r["s"] for _, r in chosen],
        "rank": [RANK[r["s"]] for _, r in chosen],
        "at": [_EPOCH + timedelta(microseconds=r["at"]) for _, r in chosen],
        "exit_code": [r.get("exit_code") for _, r in chosen],
        "output": [r.get("output") for _, r in chosen],
        "truncated": [bool(r.get("output_truncated")) for _, r in chosen],
        "error": [r.get("error") for _, r in chosen],
        "reason": [r.get("reason") for _, r in chosen],
    }
    types = ["uuid[]", "uuid[]", "text[]", "int[]", "timestamptz[]", "int[]", "text[]", "boolean[]", "text[]", "text[]"]
    final = "v.rank = 4"
    statement = (
        f"UPDATE {table} AS d SET state = v.status, "
        f"finished_at = CASE WHEN {final} THEN v.at ELSE d.finished_at END, "
        f"notify_cancel = CASE WHEN {final} THEN false ELSE d.notify_cancel END, "
        f"exit_code = COALESCE(v.exit_code, d.exit_code), "
        f"output = COALESCE(v.output, d.output), "
        f"output_truncated = CASE WHEN v.output IS NULL THEN d.output_truncated ELSE v.truncated END, "
        f"error = COALESCE(v.error, d.error), "
        f"reason = COALESCE(v.reason, d.reason), "
        f"received_at = CASE WHEN v.status = 'received' THEN v.at ELSE d.received_at END, "
        f"running_at = CASE WHEN v.status = 'running' THEN v.at ELSE d.running_at END "
        f"FROM unnest({', '.join(f'%s::{t}' for t in types)}) "
        f"AS v(command_id, device_id, status, rank, at, exit_code, output, truncated, error, reason) "
        f"WHERE d.command_id = v.command_id AND d.device_id = v.device_id "
        f"AND (CASE d.state {_RANK_SQL} END) < v.rank "
        f"RETURNING d.id, d.command_id, d.state"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, list(columns.values()))
        return cursor.fetchall()


def flush(limit: int = FLUSH_BATCH) -> int:
    """Writes up to `limit` queued reports to PostgreSQL; returns how many deliveries moved."""
    return _flush_batch(limit)[1]


def flush_all() -> int:
    """Everything queued so far (the sweeps that must see every answered report call this).
    Not inside a transaction: a rollback there would lose reports already taken from Redis, so
    there the beat's flush writes them (a re-enrollment's cancellation then stands)."""
    if _in_caller_transaction():
        return 0
    total = 0
    while True:
        taken, moved = _flush_batch(FLUSH_BATCH)
        total += moved
        if taken < FLUSH_BATCH:
            return total


def _in_caller_transaction() -> bool:
    """In an atomic block of the application's (the blocks a test case wraps around each test,
    which Django marks `_from_testcase` for its own `durable` check, do not count)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def _flush_batch(limit: int) -> tuple[int, int]:
    """(reports taken, deliveries moved). Safe to run concurrently (each report is taken by
    exactly one flusher); a failed write puts the batch back at the head of the queue."""
    if not enabled():
        return 0, 0
    client = redis_client.client()
    raw = client.eval(_TAKE, 1, key(), limit)
    if not raw:
        return 0, 0
    by_delivery: dict[tuple[str, str], list[dict]] = {}
    for item in raw:
        device_id, _, data = item.decode().partition("|")
        report = json.loads(data)
        by_delivery.setdefault((report["c"], device_id), []).append(report)
    chosen = [(device_id, _pick(reports)) for (_, device_id), reports in by_delivery.items()]
    try:
        with transaction.atomic():
            moved = _apply(chosen)
            for state in {s for _, _, s in moved}:
                n = sum(1 for _, _, s in moved if s == state)
                transaction.on_commit(lambda state=state, n=n: DELIVERIES.labels(state).inc(n))
            live.changed_on_commit({str(c) for _, c, _ in moved}, [pk for pk, _, _ in moved])
    except Exception:
        client.lpush(key(), *reversed(raw))  # back at the head, in order, for the next flush
        raise
    return len(raw), len(moved)
