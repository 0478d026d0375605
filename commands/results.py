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

A flush is never stopped by one report and loses none when its process dies (issue 14), as the
heartbeat's (devices.writebehind): reports are checked at the edge (commands.device_api), the
flush writes through `mdm.deadletters` (a report PostgreSQL refuses is set aside with its reason,
the rest lands), and it claims its batch instead of popping it (mdm.claimqueue: a claim list of
its own, registered with its time and deleted after the commit; a later flush puts back the
claims older than WRITE_BEHIND_CLAIM_STALE_S). Writing a claim twice changes nothing: the UPDATE only moves a delivery forward, and the first final stays.

Keys: {CACHE_PREFIX}:cmd:results, a list of '<device id>|<entry JSON>' (see `entry`), and its
claims (mdm.claimqueue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from commands import live
from commands.models import FINAL_STATES, RANK, Delivery
from mdm import deadletters, sql
from mdm.claimqueue import ClaimedQueue
from mdm.metrics import DELIVERIES

FLUSH_BATCH = 5000
# A report larger than this (a long shell output) is applied at once instead: the queue's memory
# stays bounded (20,000 devices reporting at once: at most ~80 MB) and so does one flush's statement.
MAX_QUEUED_BYTES = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUEUE = ClaimedQueue("cmd:results", label="results")


def enabled() -> bool:
    """Redis configured, PostgreSQL behind (the flush statement is PostgreSQL's), not switched off."""
    return bool(settings.REDIS_URL) and connection.vendor == "postgresql" and getattr(settings, "RESULT_WRITE_BEHIND", True)


def key() -> str:
    return QUEUE.key()


def entry(*, command_id, status: str, now: datetime, exit_code=None, output=None, error=None, reason=None) -> str:
    """A validated report as the queue holds it (what record_result would write, already cut),
    or "" when it is too large to queue (see MAX_QUEUED_BYTES)."""
    from commands.services.reports import final_fields

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
_TYPES = ["uuid[]", "uuid[]", "text[]", "int[]", "timestamptz[]", "int[]", "text[]", "boolean[]", "text[]", "text[]"]


@dataclass
class _Report:
    raw: bytes  # as the queue held it
    device_id: str
    data: dict  # the entry, parsed
    row: tuple = ()  # the statement's values, in _TYPES order


def _parse(raw: bytes) -> _Report:
    """One queued report, checked and converted; raises for anything malformed (the flush sets
    it aside: see mdm.deadletters). Ids are left to PostgreSQL's uuid parser: a bad one fails the
    statement, and the isolation finds it."""
    device_id, sep, text_ = raw.decode("utf-8").partition("|")  # strict: a smuggled surrogate fails here
    r = json.loads(text_)
    if not sep or not isinstance(r, dict) or r.get("s") not in RANK or not isinstance(r.get("at"), int):
        raise ValueError("not a queued report")
    exit_code = r.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int) or not -(2**31) <= exit_code < 2**31):
        raise ValueError("exit_code out of range")
    output, error, reason = r.get("output"), r.get("error"), r.get("reason")
    if not all(v is None or isinstance(v, str) for v in (output, error, reason, r.get("c"))):
        raise ValueError("a text field is not text")
    row = (r["c"], device_id, r["s"], RANK[r["s"]], _EPOCH + timedelta(microseconds=r["at"]),
           exit_code, output, bool(r.get("output_truncated")), error, reason)
    return _Report(raw, device_id, r, row)


_STATEMENT = (
    "UPDATE {table} AS d SET state = v.status, "
    "finished_at = CASE WHEN v.rank = 4 THEN v.at ELSE d.finished_at END, "
    "notify_cancel = CASE WHEN v.rank = 4 THEN false ELSE d.notify_cancel END, "
    "exit_code = COALESCE(v.exit_code, d.exit_code), "
    "output = COALESCE(v.output, d.output), "
    "output_truncated = CASE WHEN v.output IS NULL THEN d.output_truncated ELSE v.truncated END, "
    "error = COALESCE(v.error, d.error), "
    "reason = COALESCE(v.reason, d.reason), "
    "received_at = CASE WHEN v.status = 'received' THEN v.at ELSE d.received_at END, "
    "running_at = CASE WHEN v.status = 'running' THEN v.at ELSE d.running_at END "
    "FROM unnest({arrays}) "
    "AS v(command_id, device_id, status, rank, at, exit_code, output, truncated, error, reason) "
    "WHERE d.command_id = v.command_id AND d.device_id = v.device_id "
    "AND (CASE d.state {ranks} END) < v.rank "
    "RETURNING d.id, d.command_id, d.state"
)


def _apply(chosen: list[_Report]) -> list[tuple]:
    """One UPDATE for the batch, with record_result's rules: forward moves only (rank below the
    report's), first final wins; timestamps are the reports' own. Applying a report again (a
    claim written twice) therefore changes nothing."""
    statement = _STATEMENT.format(table=sql.table(Delivery), arrays=", ".join(f"%s::{t}" for t in _TYPES), ranks=_RANK_SQL)
    with connection.cursor() as cursor:
        cursor.execute(statement, [list(column) for column in zip(*(r.row for r in chosen))])
        return cursor.fetchall()


def flush(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> int:
    """Writes up to `limit` queued reports to PostgreSQL; returns how many deliveries moved."""
    return flush_batch(limit, stale_s=stale_s)[1]


def flush_all() -> int:
    """Everything queued so far (the sweeps that must see every answered report call this).
    Not inside a transaction: a rollback there would undo writes whose claim is already
    released, so there the beat's flush writes them (a re-enrollment's cancellation then stands)."""
    total = 0
    while True:
        taken, moved = flush_batch(FLUSH_BATCH)
        total += moved
        if taken < FLUSH_BATCH:
            return total


def claims() -> dict[str, float]:
    return QUEUE.claims()


def write(entries: list[bytes]) -> tuple[int, list]:
    """The claimed reports in one transaction: (deliveries moved, dead letters)."""
    letters = []
    by_delivery: dict[tuple[str, str], list[_Report]] = {}
    for raw in entries:
        try:
            report = _parse(raw)
        except Exception as exc:  # this entry's own fault: malformed
            letters.append(deadletters.letter("result", raw, exc, device_id=_device_of(raw)))
            continue
        by_delivery.setdefault((report.data["c"], report.device_id), []).append(report)
    chosen = []
    for reports in by_delivery.values():
        pick = _pick([r.data for r in reports])
        chosen.append(next(r for r in reports if r.data is pick))

    def body(isolate):
        moved, bad = isolate(chosen, _apply)
        for state in {s for _, _, s in moved}:
            n = sum(1 for _, _, s in moved if s == state)
            transaction.on_commit(lambda state=state, n=n: DELIVERIES.labels(state).inc(n))
        live.changed_on_commit({str(c) for _, c, _ in moved}, [pk for pk, _, _ in moved])
        return moved, bad

    moved, bad = deadletters.write_isolating(body)
    letters += [deadletters.letter("result", r.raw, exc, device_id=r.device_id) for r, exc in bad]
    return len(moved), letters


def _device_of(raw: bytes) -> str | None:
    return raw.partition(b"|")[0][:64].decode("utf-8", "replace") or None


def flush_batch(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> tuple[int, int]:
    """(reports taken, deliveries moved). Safe to run concurrently (each report is claimed by
    exactly one flusher); a write that fails for no entry's fault puts the claim back at the head
    of the queue, in order, for the next flush (mdm.claimqueue)."""
    if not enabled():
        return 0, 0
    return QUEUE.drain(limit, lambda entries: write(entries), stale_s=stale_s)


def backlog() -> dict[str, int]:
    """What waits for the flush (the console's Operations page): one pipeline."""
    if not enabled():
        return {}
    queued, claimed = QUEUE.backlog()
    return {"reports": queued, "claims": claimed}
