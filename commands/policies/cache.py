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
