"""Policy status reports, write-behind (PROTOCOL.md v1.1 PUT /api/v1/device/policy/status).

Why: a policy change reaches the whole fleet within one heartbeat interval, and every device
answers with a report. Written by its request, each report was an UPDATE with its own commit:
about 1 ms of the web's CPU, three heartbeats' worth, in the same second as the fleet's policy
fetches, which is what moved the steady heartbeat p99 during a fan-out (bench/policy_fanout.py).
Queued, a report costs one Redis RPUSH; a flusher writes each second's reports in one statement.

What it costs: the compliance figures in PostgreSQL (console, API, alerting) trail the device's
204 by up to the flush interval (1 s), as heartbeats and command results do, and a Redis crash
loses at most that second of reports (the compose file's Redis keeps an append-only file); a
device that lost its report re-sends it at its next start or version change. The last report
wins, by its time: writing a claim twice, or an older report flushed after a newer one, changes
nothing. A report too large to queue, or with no Redis (the embedded default), is written at once.

Keys: {CACHE_PREFIX}:policy:reports, a list of '<device id>|<entry JSON>' (see `entry`), and
its claims (mdm.claimqueue)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection

from devices.models import Device, DevicePolicyState
from mdm import deadletters, redis_client, sql
from mdm.claimqueue import ClaimedQueue

QUEUE = ClaimedQueue("policy:reports", label="policy_reports")
FLUSH_BATCH = 5000
# 32 items with a reason each fit; a larger report is written at once (the queue stays bounded).
MAX_QUEUED_BYTES = 8192
MAX_VERSION = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def enabled() -> bool:
    """Redis configured, PostgreSQL behind (the flush statement is PostgreSQL's), not switched off."""
    return (bool(settings.REDIS_URL) and connection.vendor == "postgresql"
            and getattr(settings, "POLICY_REPORT_WRITE_BEHIND", True))


def entry(*, version: int, items: dict, all_applied: bool, now: datetime) -> str:
    """A validated report as the queue holds it, or "" when it is too large to queue."""
    text = json.dumps({"v": version, "i": items, "a": all_applied, "at": int((now - _EPOCH) / timedelta(microseconds=1))},
                      separators=(",", ":"))
    return text if len(text) <= MAX_QUEUED_BYTES else ""


def queue(*, device_id, version: int, items: dict, all_applied: bool, now: datetime) -> bool:
    """Queue the report; False when it must be written at once (too large, or Redis refused)."""
    text = entry(version=version, items=items, all_applied=all_applied, now=now)
    if not text:
        return False
    try:
        redis_client.client().rpush(QUEUE.key(), f"{device_id}|{text}")
    except Exception:  # Redis away: the report goes to PostgreSQL at once, as without write-behind
        return False
    return True


def _parse(raw: bytes) -> tuple:
    """One queued report as the statement's row; raises for anything malformed (the flush sets it
    aside as a dead letter). The device id is left to PostgreSQL's uuid parser."""
    device_id, sep, text = raw.decode("utf-8").partition("|")
    r = json.loads(text)
    if not sep or not isinstance(r, dict):
        raise ValueError("not a queued policy report")
    version, items, applied, at = r.get("v"), r.get("i"), r.get("a"), r.get("at")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
        raise ValueError("version out of range")
    if not isinstance(items, dict) or not isinstance(applied, bool) or isinstance(at, bool) or not isinstance(at, int):
        raise ValueError("not a queued policy report")
    return device_id, version, json.dumps(items), applied, _EPOCH + timedelta(microseconds=at)


_STATEMENT = (
    "INSERT INTO {state} AS s (device_id, applied_version, items, all_applied, reported_at, version, policy_id) "
    "SELECT v.device_id, v.version, v.items, v.applied, v.at, 0, NULL "
    "FROM unnest(%s::uuid[], %s::bigint[], %s::jsonb[], %s::boolean[], %s::timestamptz[]) "
    "AS v(device_id, version, items, applied, at) JOIN {device} d ON d.id = v.device_id "
    "ON CONFLICT (device_id) DO UPDATE SET applied_version = EXCLUDED.applied_version, items = EXCLUDED.items, "
    "all_applied = EXCLUDED.all_applied, reported_at = EXCLUDED.reported_at "
    "WHERE s.reported_at IS NULL OR s.reported_at <= EXCLUDED.reported_at "
    "RETURNING s.device_id"
)


def _apply(rows: list[tuple]) -> list:
    """One statement for the batch. A device deleted meanwhile has no row to join: its report goes."""
    statement = _STATEMENT.format(state=sql.table(DevicePolicyState), device=sql.table(Device))
    with connection.cursor() as cursor:
        cursor.execute(statement, [list(column) for column in zip(*rows)])
        return cursor.fetchall()


def write(entries: list[bytes]) -> tuple[int, list]:
    """The claimed reports in one transaction, the newest per device: (rows written, dead letters)."""
    letters, newest = [], {}
    for raw in entries:
        try:
            row = _parse(raw)
        except Exception as exc:  # this entry's own fault: malformed
            letters.append(deadletters.letter("policy_report", raw, exc, device_id=_device_of(raw)))
            continue
        kept = newest.get(row[0])
        if kept is None or kept[1][4] <= row[4]:
            newest[row[0]] = (raw, row)
    chosen = list(newest.values())

    def body(isolate):
        return isolate(chosen, lambda batch: _apply([row for _, row in batch]))

    written, bad = deadletters.write_isolating(body)
    letters += [deadletters.letter("policy_report", raw, exc, device_id=row[0]) for (raw, row), exc in bad]
    return len(written), letters


def _device_of(raw: bytes) -> str | None:
    return raw.partition(b"|")[0][:64].decode("utf-8", "replace") or None


def flush(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> int:
    """Writes up to `limit` queued reports; returns how many devices' states were written."""
    if not enabled():
        return 0
    return QUEUE.drain(limit, lambda entries: write(entries), stale_s=stale_s)[1]


def flush_all() -> int:
    """Everything queued so far (tests, and readers that must see every answered report)."""
    total = 0
    while enabled():
        taken, written = QUEUE.drain(FLUSH_BATCH, lambda entries: write(entries))
        total += written
        if taken < FLUSH_BATCH:
            break
    return total


def backlog() -> dict[str, int]:
    if not enabled():
        return {}
    queued, claimed = QUEUE.backlog()
    return {"reports": queued, "claims": claimed}
