"""Each device's current policy version in Redis, for the heartbeat answer (PROTOCOL.md v1.1
`policy_version`). The heartbeat is the product's hottest path (docs/performance.md): the
write-behind's one Lua call reads this key together with the token check and the command marker
(devices.hooks.policy_prefix), so a warm heartbeat learns the version with no round trip of its
own and no PostgreSQL query.

The value is the version number as decimal text. A missing key costs the heartbeat one query
(commands.policies.resolve.current_for_device), after which it is written again. The race is the
command marker's (commands.markers): a heartbeat reads the old version from PostgreSQL while an
edit commits, and then writes the stale number. So the reader first writes a random check token
and its final write is a compare-and-set on that token; every change that moves a device's
version writes the key after its transaction commits, which either lands before the read (the
read sees the new rows) or overwrites the check token (the compare-and-set fails).

A change writes `<version>:<change number>`, the number taken from one counter while the change
holds the reconciliation lock (commands.policies.resolve), so it orders changes as they commit.
Each key keeps the write of the latest change whatever order the writes land in: versions are
numbered server-wide, but a device moved to an older policy gets a lower number, so the version
alone cannot say which write is the later one. A heartbeat's check writes the bare version (no
change number: any change's write replaces it)."""

import logging
import secrets
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from mdm import redis_client

logger = logging.getLogger(__name__)

PREFIX = f"{settings.CACHE_PREFIX}:pver:"
TTL_S = 86400  # deletes on change keep it right; the TTL only bounds what an idle fleet keeps
CHECK_TTL_S = 60
_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def key(device_id) -> str:
    return PREFIX + str(device_id)


def parse(raw: bytes | None) -> int | None:
    """The cached version, or None (absent, or a check in flight: ask PostgreSQL)."""
    if raw is None:
        return None
    version = raw.split(b":", 1)[0]  # "<version>:<change>" as a change writes it, "<version>" as a check does
    return int(version) if version.isdigit() else None


def read(device_id) -> bytes | None:
    r = redis_client.client()
    if r is None:
        return None
    try:
        return r.get(key(device_id))
    except Exception:  # Redis trouble must not fail a heartbeat: PostgreSQL answers
        logger.warning("policy version read failed", exc_info=True)
        return None


def begin_check(device_id) -> str | None:
    r = redis_client.client()
    if r is None:
        return None
    token = "chk:" + secrets.token_hex(8)
    try:
        r.set(key(device_id), token, ex=CHECK_TTL_S)
    except Exception:
        logger.warning("policy version write failed", exc_info=True)
        return None
    return token


def finish(device_id, token: str | None, version: int) -> None:
    r = redis_client.client()
    if r is None or token is None:
        return
    try:
        r.eval(_CAS, 1, key(device_id), token, str(int(version)), TTL_S)
    except Exception:
        logger.warning("policy version write failed", exc_info=True)


# Redis runs one command at a time, and every heartbeat's Lua call reads a version key: a command
# over a whole fleet's keys holds all of them up for as long as it runs. The version write for
# 2,000 keys in one call took 4-5 ms on an idle Redis and 11-16 ms in the fan-out benchmark
# (Redis's slowlog), the heartbeats in flight waiting behind it (their p99 in that second). In
# calls of CHUNK keys (a fraction of a millisecond each), heartbeats are served in between.
CHUNK = 100


def _chunks(items: list) -> list:
    return [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]


def forget_now(device_ids) -> None:
    r = redis_client.client()
    if r is None:
        return
    try:
        for keys in _chunks([key(d) for d in device_ids]):
            r.delete(*keys)
    except Exception:
        # The stale value then lives until its TTL; the sync push still makes the device pull.
        logger.error("policy version delete failed", exc_info=True)


# After a change commits: each moved device's `<version>:<change>`, unless the key already holds
# a later change's (a higher change number). A check token ('chk:') or a check's bare version is
# overwritten: that check may have read the rows before this commit, and its compare-and-set then
# fails. A device moved to no policy gets version 0, which its heartbeats answer without a query.
# KEYS: version keys; ARGV[1] TTL, ARGV[2] the change's number, ARGV[2 + i] the version of KEYS[i].
_REPLACE = """
local change = tonumber(ARGV[2])
local n = 0
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  local written = v and tonumber(string.match(v, '^%d+:(%d+)$'))
  if (not written) or written < change then
    redis.call('SET', k, ARGV[i + 2] .. ':' .. ARGV[2], 'EX', tonumber(ARGV[1]))
    n = n + 1
  end
end
return n
"""
CHANGE_KEY = f"{settings.CACHE_PREFIX}:pver-change"


@lru_cache(maxsize=2)
def _replace_script(client):
    return client.register_script(_REPLACE)  # EVALSHA: the script's text is sent once, not per chunk


def moved_on_commit(changed: dict) -> None:
    """Inside the transaction that moves the devices, holding the reconciliation lock
    (commands.policies.resolve.reconcile), {device id: (policy id, version)}: the change's number
    is taken now, and after the commit each moved device's key is written (replace_now). Nothing
    is written before the commit: until then the old number is the right answer, and a
    fleet-wide change that deleted its keys first sent every heartbeat of that window to
    PostgreSQL."""
    versions = {str(d): v for d, (_, v) in changed.items()}
    if not versions:
        return
    r = redis_client.client()
    if r is None:
        return
    try:
        change = int(r.incr(CHANGE_KEY))
    except Exception:
        # The keys keep their old numbers until their TTL; a sync push, when sent, still makes
        # the devices pull. Logged as the replacement's own failure is.
        logger.error("policy version write failed", exc_info=True)
        return
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: replace_now(versions, change))
    else:
        replace_now(versions, change)


def replace_now(versions: dict, change: int) -> None:
    """{device id: version, 0 for none}, after change number `change` committed: chunk by chunk
    (_REPLACE), one call each; a key a later change wrote already keeps that change's number."""
    r = redis_client.client()
    if r is None:
        return
    script = _replace_script(r)
    try:
        for chunk in _chunks(list(versions.items())):
            script(keys=[key(d) for d, _ in chunk], args=[TTL_S, change, *[int(v) for _, v in chunk]])
    except Exception:
        # A key not written keeps the old number until its TTL; a sync push, when sent, still
        # makes that device pull.
        logger.error("policy version write failed", exc_info=True)


def forget_on_commit(device_ids) -> None:
    """Inside a transaction after which these devices' cached numbers may be wrong (a re-enrolled
    device's): delete now and after the commit (the delete that closes the race above). The
    delete forgets the change number too: a change's replacement still running from before
    (milliseconds) then writes its number again, right unless a later change's write of the same
    key had already landed; that one stays until the next change or the TTL."""
    ids = [str(d) for d in device_ids]
    if not ids:
        return
    forget_now(ids)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: forget_now(ids))
