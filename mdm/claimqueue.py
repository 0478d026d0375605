"""A Redis list drained by flushers that claim their batch instead of popping it, so a flusher
that dies loses nothing (issue 14): the write-behind queues of command results
(commands.results) and policy reports (commands.policies.reports) are two of these.

`take()` moves up to N entries into a claim list of the flusher's own, registered with its time
in a sorted set; `release()` deletes it after the flusher's commit (with the batch's dead letters,
in one MULTI); `give_back()` puts a claim whose write failed for no entry's fault back at the head
of the queue, in order. A claim older than WRITE_BEHIND_CLAIM_STALE_S is a dead flusher's: the
next `take()` puts it back first. Writing a claim twice must therefore change nothing: each
queue's statement is idempotent (forward moves only, last report wins by its time).

Keys: {CACHE_PREFIX}:<name> (the queue), <name>:claims (claim id -> when taken, ms) and
<name>:c:<claim> (the claimed entries, in order)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from mdm import deadletters, redis_client
from mdm.metrics import WRITEBEHIND_REQUEUED

logger = logging.getLogger(__name__)

_REQUEUE_FN = """
local function chunked(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
-- A claim's entries back at the head of the queue, in their order; the claim deleted.
local function requeue(cid, queue, claims, prefix)
  local items = redis.call('LRANGE', prefix .. cid, 0, -1)
  local reversed = {}
  for i = #items, 1, -1 do reversed[#reversed + 1] = items[i] end
  chunked('LPUSH', queue, reversed)
  redis.call('DEL', prefix .. cid)
  redis.call('ZREM', claims, cid)
end
"""
# Claims older than the cutoff go back first (their flusher died), then up to N entries move into
# this flush's claim. KEYS: 1 queue, 2 claims set; ARGV: 1 claim id, 2 limit, 3 now (ms),
# 4 stale cutoff (ms), 5 claim key prefix. Returns {entries claimed, claims put back}: the entries
# are read from the claim afterwards, in pages (READ_PAGE).
_TAKE = _REQUEUE_FN + """
local requeued = 0
for _, cid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)) do
  requeue(cid, KEYS[1], KEYS[2], ARGV[5])
  requeued = requeued + 1
end
local limit = tonumber(ARGV[2])
local taken = 0
local queued = redis.call('LLEN', KEYS[1])
if limit > 0 and queued > 0 then
  local claim = ARGV[5] .. ARGV[1]
  if queued <= limit then
    -- The whole queue is the claim: renamed, not copied entry by entry (O(1)); producers
    -- start a new queue with their next RPUSH.
    redis.call('RENAME', KEYS[1], claim)
    taken = queued
  else
    local items = redis.call('LRANGE', KEYS[1], 0, limit - 1)
    redis.call('LTRIM', KEYS[1], #items, -1)
    chunked('RPUSH', claim, items)
    taken = #items
  end
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return {taken, requeued}
"""
# One claim back in the queue now. KEYS, ARGV[1] and ARGV[2] as _TAKE's KEYS, ARGV[1] and ARGV[5].
_GIVE_BACK = _REQUEUE_FN + """
if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false then return 0 end
requeue(ARGV[1], KEYS[1], KEYS[2], ARGV[2])
return 1
"""


# Redis runs one command at a time and every device request makes one: a second's 2,000 reports
# read back in one call held it ~1 ms (3-4 ms on a busy machine); pages of 500 keep each call short.
READ_PAGE = 500


@dataclass
class Claim:
    id: str
    entries: list[bytes] = field(default_factory=list)  # raw, in queue order


def in_caller_transaction() -> bool:
    """In an atomic block of the application's (the blocks a test case wraps around each test,
    which Django marks `_from_testcase` for its own `durable` check, do not count). A flush must
    not run there: a rollback would undo writes whose claim is already released."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


class ClaimedQueue:
    def __init__(self, name: str, label: str):
        self.name = name  # the key under CACHE_PREFIX
        self.label = label  # the queue's name in metrics and logs

    def key(self) -> str:
        return f"{settings.CACHE_PREFIX}:{self.name}"

    def claims_key(self) -> str:
        return f"{self.key()}:claims"

    def claim_prefix(self) -> str:
        return f"{self.key()}:c:"

    def take(self, limit: int, *, stale_s: float | None = None) -> tuple[Claim, int]:
        """Put back the claims older than `stale_s` (default WRITE_BEHIND_CLAIM_STALE_S: their
        flusher died), then claim up to `limit` entries. Returns (the claim, claims put back)."""
        stale_s = settings.WRITE_BEHIND_CLAIM_STALE_S if stale_s is None else stale_s
        claim = Claim(id=uuid.uuid4().hex)
        now_ms = int(time.time() * 1000)
        client = redis_client.client()
        taken, requeued = client.eval(
            _TAKE, 2, self.key(), self.claims_key(), claim.id, limit, now_ms, now_ms - int(stale_s * 1000),
            self.claim_prefix())
        for start in range(0, int(taken), READ_PAGE):  # the claim is this flush's own: nothing else writes it
            claim.entries.extend(client.lrange(self.claim_prefix() + claim.id, start, start + READ_PAGE - 1))
        if requeued:
            WRITEBEHIND_REQUEUED.labels(self.label).inc(requeued)
            logger.warning("%s flush: put back %d claim(s) of a flusher that died", self.label, requeued)
        return claim, int(requeued)

    def requeue_stale(self, *, stale_s: float | None = None) -> int:
        """Only the first half of take(): put back the claims older than `stale_s`."""
        return self.take(0, stale_s=stale_s)[1]

    def claims(self) -> dict[str, float]:
        """Claims taken and not yet released: claim id -> age in seconds."""
        now = time.time()
        return {c.decode(): now - s / 1000
                for c, s in redis_client.client().zrange(self.claims_key(), 0, -1, withscores=True)}

    def release(self, claim: Claim, letters=()) -> None:
        """After the commit: the claim goes and its dead letters are kept, in one MULTI."""
        pipe = redis_client.client().pipeline(transaction=True)
        deadletters.queue_on(pipe, letters)
        pipe.unlink(self.claim_prefix() + claim.id)  # a batch of thousands is freed off Redis's main thread
        pipe.zrem(self.claims_key(), claim.id)
        pipe.execute()
        deadletters.counted(letters)

    def give_back(self, claim: Claim) -> None:
        try:
            redis_client.client().eval(_GIVE_BACK, 2, self.key(), self.claims_key(), claim.id, self.claim_prefix())
        except Exception:  # Redis away as well: the claim stays, a later flush finds it stale
            logger.warning("%s flush: claim %s left for a later flush", self.label, claim.id, exc_info=True)

    def drain(self, limit: int, write, *, stale_s: float | None = None) -> tuple[int, int]:
        """One flush: claim up to `limit` entries, `write(entries) -> (written, dead letters)` in
        the caller's terms, release. (entries taken, written). A write that raises puts the claim
        back for the next flush and raises."""
        if in_caller_transaction():
            return 0, 0
        claim, _ = self.take(limit, stale_s=stale_s)
        if not claim.entries:
            return 0, 0
        try:
            written, letters = write(claim.entries)
        except Exception:
            self.give_back(claim)
            raise
        self.release(claim, letters)
        if letters:
            logger.error("%s flush: %d entries set aside as dead letters", self.label, len(letters))
        return len(claim.entries), written

    def backlog(self) -> tuple[int, int]:
        """(entries queued, claims held): one pipeline."""
        pipe = redis_client.client().pipeline(transaction=False)
        pipe.llen(self.key())
        pipe.zcard(self.claims_key())
        queued, claimed = pipe.execute()
        return queued, claimed
