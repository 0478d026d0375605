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


def forget_now(device_ids) -> None:
    r = redis_client.client()
    if r is None:
        return
    keys = [key(d) for d in device_ids]
    try:
        for start in range(0, len(keys), 5000):
            r.delete(*keys[start : start + 5000])
    except Exception:
        # The stale value then lives until its TTL; the sync push still makes the device pull.
        logger.error("policy version delete failed", exc_info=True)


# After a change commits: each moved device's new version, unless the key already holds a newer
# number (versions only increase server-wide, so a later change's write wins whatever the order
# the two on-commit writes run in). A check token ('chk:') is overwritten: that check may have
# read the rows before this commit, and its compare-and-set then fails.
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


def write_now(versions: dict) -> None:
    """{device id: version > 0}: the numbers the heartbeats will answer, so a fleet-wide change
    does not send every device's next heartbeat to PostgreSQL (docs/policies.md)."""
    r = redis_client.client()
    if r is None or not versions:
        return
    items = [(key(d), str(int(v))) for d, v in versions.items()]
    try:
        for start in range(0, len(items), 2000):
            chunk = items[start : start + 2000]
            r.eval(_SET_IF_NEWER, len(chunk), *[k for k, _ in chunk], TTL_S, *[v for _, v in chunk])
    except Exception:
        logger.error("policy version write failed", exc_info=True)  # deleted before: PostgreSQL answers


def moved_on_commit(changed: dict) -> None:
    """Inside the transaction that moves the devices, {device id: (policy id, version)}: the keys
    go now and after the commit (forget_on_commit), and then the new numbers are written; a
    device moved to no policy (version 0) is left without a key (its next heartbeat asks
    PostgreSQL once): 0 is not a number a later write could be compared with."""
    forget_on_commit(list(changed))
    versions = {d: v for d, (_, v) in changed.items() if v}
    if versions and transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: write_now(versions))


def forget_on_commit(device_ids) -> None:
    """Inside the transaction that moves the devices' versions: delete now (callers whose
    transaction never commits in the usual way, tests in a rolled-back transaction) and after
    the commit (the delete that closes the race above)."""
    ids = [str(d) for d in device_ids]
    if not ids:
        return
    forget_now(ids)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: forget_now(ids))
