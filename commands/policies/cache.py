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
version deletes the key after its transaction commits, which either lands before the read (the
read sees the new rows) or deletes the check token (the compare-and-set fails)."""

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
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


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


# After a change commits, right after its delete of the same keys: each moved device's new
# version, unless the key already holds a newer number (versions only increase server-wide: a
# later change's write that came in between wins). A check token ('chk:') is overwritten: that
# check may have read the rows before this commit, and its compare-and-set then fails. Not
# covered: an earlier change's chunk whose delete runs after a later change's write of the same
# keys. Reconciliations run one at a time (resolve's advisory lock, held to the commit), so that
# takes the earlier replacement (milliseconds) stalling longer than what the later transaction
# does after the earlier commit: its reconciliation and commit, ~60 ms of CPU for 2,000 devices
# in-process. The key then holds the older number until the next change or its TTL.
# KEYS: version keys; ARGV[1] TTL, ARGV[1 + i] the new version of KEYS[i] (> 0).
_SET_IF_NEWER = """
local n = 0
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  local new = tonumber(ARGV[i + 1])
  local old = v and tonumber(v)
  if (not old) or old < new then
    redis.call('SET', k, ARGV[i + 1], 'EX', tonumber(ARGV[1]))
    n = n + 1
  end
end
return n
"""


@lru_cache(maxsize=2)
def _set_if_newer_script(client):
    return client.register_script(_SET_IF_NEWER)  # EVALSHA: the script's text is sent once, not per chunk


def moved_on_commit(changed: dict) -> None:
    """Inside the transaction that moves the devices, {device id: (policy id, version)}: after the
    commit, each moved device's key is deleted (the delete that closes the race above) and its new
    number written (replace_now); a device moved to no policy (version 0) is left without a key
    (its next heartbeat asks PostgreSQL once): 0 is not a number a later write could be compared
    with. Nothing is deleted before the commit: until then the old number is the right answer,
    and a fleet-wide change that deleted its keys first sent every heartbeat of that window to
    PostgreSQL."""
    versions = {str(d): v for d, (_, v) in changed.items()}
    if not versions:
        return
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: replace_now(versions))
    else:
        replace_now(versions)


def replace_now(versions: dict) -> None:
    """{device id: version, 0 for none}, after the change committed: chunk by chunk, the keys
    deleted, then the positive numbers written (_SET_IF_NEWER), so no key is missing for longer
    than a round trip."""
    r = redis_client.client()
    if r is None:
        return
    script = _set_if_newer_script(r)
    try:
        for chunk in _chunks(list(versions.items())):
            r.delete(*[key(d) for d, _ in chunk])
            newer = [(key(d), str(int(v))) for d, v in chunk if v]
            if newer:
                script(keys=[k for k, _ in newer], args=[TTL_S, *[v for _, v in newer]])
    except Exception:
        # A key deleted and not written: that device's next heartbeat asks PostgreSQL. One not
        # deleted keeps the old number until its TTL; a sync push, when sent, still makes it pull.
        logger.error("policy version write failed", exc_info=True)


def forget_on_commit(device_ids) -> None:
    """Inside a transaction after which these devices' cached numbers may be wrong (a re-enrolled
    device's): delete now and after the commit (the delete that closes the race above)."""
    ids = [str(d) for d in device_ids]
    if not ids:
        return
    forget_now(ids)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: forget_now(ids))
