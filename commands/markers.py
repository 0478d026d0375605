"""The heartbeat's fast path: a per-device "nothing to do" marker in Redis.

Most heartbeats carry nothing for the device: no pending command, no cancellation, same keys.
Answering those from one Redis GET keeps the database out of the hot path. The marker is
*negative* (it says "checked: nothing pending, keys = k2,k3"), so a lost or evicted key only
costs one database check, never a missed command.

The race it must survive: a heartbeat finds nothing in the database while a command for the
device commits, and then writes a stale "clean" marker. So a check first writes a random
check token, and the final "clean" write is a compare-and-set on that token. Every change that
could give the device work (deliveries created or cancelled, keys changed) deletes the marker
*after* its transaction commits, which either lands before the check (the check sees the new
rows) or deletes the check token (the compare-and-set fails). Without Redis (the embedded
default) every heartbeat checks the database, which is fine for small fleets on SQLite.
"""

import logging
import secrets

from django.db import transaction

from mdm import redis_client

logger = logging.getLogger(__name__)

PREFIX = "mdm:cmdq:"
CLEAN_TTL_S = 300
CHECK_TTL_S = 60
_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def _redis():
    return redis_client.client()


def key(device_id) -> str:
    return PREFIX + str(device_id)


def parse_clean(value: bytes | None) -> str | None:
    """The kid list of a clean marker's raw value, or None (check the database)."""
    if value is None or not value.startswith(b"ok:"):
        return None
    return value[3:].decode()


def clean_kids(device_id: str) -> str | None:
    """The kid list recorded with a clean marker ("" for a device with no kids reported), or
    None when the device must be checked in the database."""
    r = _redis()
    if r is None:
        return None
    try:
        value = r.get(key(device_id))
    except Exception:  # Redis trouble must not fail a heartbeat: fall back to the database
        logger.warning("command marker read failed", exc_info=True)
        return None
    return parse_clean(value)


def begin_check(device_id: str) -> str | None:
    r = _redis()
    if r is None:
        return None
    token = "chk:" + secrets.token_hex(8)
    try:
        r.set(PREFIX + str(device_id), token, ex=CHECK_TTL_S)
    except Exception:
        logger.warning("command marker write failed", exc_info=True)
        return None
    return token


def finish_clean(device_id: str, token: str | None, kids: str) -> None:
    r = _redis()
    if r is None or token is None:
        return
    try:
        r.eval(_CAS, 1, PREFIX + str(device_id), token, "ok:" + kids, CLEAN_TTL_S)
    except Exception:
        logger.warning("command marker write failed", exc_info=True)


def dirty_now(device_ids) -> None:
    r = _redis()
    if r is None:
        return
    ids = [PREFIX + str(d) for d in device_ids]
    try:
        for start in range(0, len(ids), 5000):
            r.delete(*ids[start : start + 5000])
    except Exception:
        # The marker then lives until its TTL: the device sees its work at most CLEAN_TTL_S late.
        logger.error("command marker delete failed", exc_info=True)


def dirty_on_commit(device_ids) -> None:
    """Call inside the transaction that gives the devices work. The delete after commit is the
    one that matters (see the race above); the one now also covers callers whose transaction
    never commits in the usual way (tests wrapped in a rolled-back transaction)."""
    ids = list(device_ids)
    if ids:
        dirty_now(ids)
        transaction.on_commit(lambda: dirty_now(ids))


def kids_key(kids) -> str:
    return ",".join(sorted(kids))
