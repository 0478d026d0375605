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

The marker has a second, *positive* form for commands in flight: "exactly this envelope is
pending, keys = k2,k3" (`pend:<kids>|<expires_at>|<command id>|<envelope>`). Between a push and
the device's result every heartbeat must serve that command again (PROTOCOL.md: pending = queued
or sent), and after the result the device is clean again: read from the database, each of those
heartbeats cost three queries, on 2,000 devices at once after a fan-out. The positive forms are
written only where nothing can have changed unseen:
- issuing turns a clean marker into `iss:<command id>:<kids>` (any other marker is deleted);
- the dispatch, after recording its push, turns exactly that value into the `pend:` answer,
  and a heartbeat that served exactly one command writes it with its compare-and-set;
- the device's report that ends pending turns `iss:` or `pend:` of that command into
  `ok:<kids>` (anything else is deleted).
A heartbeat check (it writes its check token), another command, a cancellation or a key change
each replace or delete the value before any of these, so the compare fails and the database is
asked instead.
"""

import logging
import secrets
from dataclasses import dataclass

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


# Issue: a clean device (nothing pending) now has exactly this command new; any other is dirty.
# KEYS: markers; ARGV[1] 'iss:<command id>:', ARGV[2] TTL.
_ISSUED = """
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and string.sub(v, 1, 3) == 'ok:' then
    redis.call('SET', k, ARGV[1] .. string.sub(v, 4), 'EX', tonumber(ARGV[2]))
  elseif not (v and string.sub(v, 1, #ARGV[1]) == ARGV[1]) then
    redis.call('DEL', k)
  end
end
return 0
"""
# Push recorded: a marker still saying 'iss:<this command>:<kids>' becomes the cached answer.
# KEYS: markers; ARGV[1] 'iss:<command id>:', ARGV[2] TTL, ARGV[2 + i] '<expires_at>|<command id>|<envelope>'.
_PUSHED = """
local n = 0
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
    redis.call('SET', k, 'pend:' .. string.sub(v, #ARGV[1] + 1) .. '|' .. ARGV[2 + i], 'EX', tonumber(ARGV[2]))
    n = n + 1
  end
end
return n
"""
# A report moved this command's delivery forward: 'iss:' or 'pend:' of it means nothing else was
# pending, so the device is clean ('ok:<kids>'); 'ok:' stays (a report only ever takes a delivery
# out of pending); anything else (a check in flight: its compare-and-set must fail) is deleted.
# KEYS[1] marker; ARGV[1] command id, ARGV[2] TTL.
_SETTLED = """
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 3) == 'ok:' then return 0 end
local kids = nil
local iss = 'iss:' .. ARGV[1] .. ':'
if string.sub(v, 1, #iss) == iss then
  kids = string.sub(v, #iss + 1)
elseif string.sub(v, 1, 5) == 'pend:' then
  local a = string.find(v, '|', 6, true)
  local b = a and string.find(v, '|', a + 1, true)
  if b and string.sub(v, b + 1, b + #ARGV[1] + 1) == ARGV[1] .. '|' then
    kids = string.sub(v, 6, a - 1)
  end
end
if kids then
  redis.call('SET', KEYS[1], 'ok:' .. kids, 'EX', tonumber(ARGV[2]))
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""
CHUNK = 1000


def _redis():
    return redis_client.client()


def key(device_id) -> str:
    return PREFIX + str(device_id)


def parse_clean(value: bytes | None) -> str | None:
    """The kid list of a clean marker's raw value, or None (check the database)."""
    if value is None or not value.startswith(b"ok:"):
        return None
    return value[3:].decode()


def read(device_id) -> bytes | None:
    """The raw marker value (None when absent or on Redis trouble: then the database decides)."""
    r = _redis()
    if r is None:
        return None
    try:
        return r.get(key(device_id))
    except Exception:  # Redis trouble must not fail a heartbeat: fall back to the database
        logger.warning("command marker read failed", exc_info=True)
        return None


@dataclass(frozen=True)
class Pushed:
    kids: str
    expires_at: int  # unix seconds, rounded down: serve only while now < expires_at
    command_id: str
    envelope: str


def _answer(expires_at: int, command_id, envelope: str) -> str:
    """What follows `pend:<kids>|` (the push's Lua call writes the kids it finds itself)."""
    return f"{expires_at}|{command_id}|{envelope}"


def pushed_value(kids: str, expires_at: int, command_id, envelope: str) -> str:
    return f"pend:{kids}|{_answer(expires_at, command_id, envelope)}"


def parse_pushed(value: bytes | None) -> Pushed | None:
    """The cached answer of a `pend:` marker, or None."""
    if value is None or not value.startswith(b"pend:"):
        return None
    try:
        kids, expires_at, command_id, envelope = value[5:].split(b"|", 3)
        return Pushed(kids.decode(), int(expires_at), command_id.decode(), envelope.decode())
    except ValueError:
        return None


def clean_kids(device_id: str) -> str | None:
    """The kid list recorded with a clean marker ("" for a device with no kids reported), or
    None when the device must be checked in the database."""
    return parse_clean(read(device_id))


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
    _finish(device_id, token, "ok:" + kids)


def finish_pushed(device_id: str, token: str | None, kids: str, expires_at: int, command_id, envelope: str) -> None:
    """The check found exactly one pending command: its answer, if nothing changed meanwhile."""
    _finish(device_id, token, pushed_value(kids, expires_at, command_id, envelope))


def _finish(device_id, token: str | None, value: str) -> None:
    r = _redis()
    if r is None or token is None:
        return
    try:
        r.eval(_CAS, 1, PREFIX + str(device_id), token, value, CLEAN_TTL_S)
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
    never commits in the usual way (tests wrapped in a rolled-back transaction). Outside a
    transaction the statement has committed already: one delete."""
    ids = list(device_ids)
    if ids:
        if transaction.get_connection().in_atomic_block:
            dirty_now(ids)
            transaction.on_commit(lambda: dirty_now(ids))
        else:
            dirty_now(ids)


def clean_on_commit(device_id, kids: str) -> None:
    """The device has nothing pending once this transaction commits (an enrollment: new keys,
    every earlier delivery ended), so its first heartbeat needs no database check. The check
    token written now makes the write after commit a compare-and-set: anything that gives the
    device work first (a command issued right after the commit) replaces or deletes it."""
    token = begin_check(device_id)
    transaction.on_commit(lambda: finish_clean(device_id, token, kids))


def _issued_now(device_ids, command_id) -> None:
    r = _redis()
    if r is None:
        return
    ids = [PREFIX + str(d) for d in device_ids]
    try:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            r.eval(_ISSUED, len(chunk), *chunk, f"iss:{command_id}:", CLEAN_TTL_S)
    except Exception:
        logger.error("command marker update failed", exc_info=True)
        dirty_now(device_ids)


def issued_on_commit(device_ids, command_id) -> None:
    """dirty_on_commit for a new command: a device known clean is marked as having exactly this
    command new, so its push can leave the cached answer (see above)."""
    ids = list(device_ids)
    if ids:
        _issued_now(ids, command_id)
        transaction.on_commit(lambda: _issued_now(ids, command_id))


def cache_pushed(command_id, entries) -> int:
    """After the push is recorded (committed): entries are (device id, expires_at unix seconds,
    envelope text). Returns how many devices got the cached answer."""
    r = _redis()
    entries = list(entries)
    if r is None or not entries:
        return 0
    cached = 0
    try:
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            cached += r.eval(_PUSHED, len(chunk), *(PREFIX + str(d) for d, _, _ in chunk), f"iss:{command_id}:", CLEAN_TTL_S,
                             *(_answer(expires_at, command_id, text) for _, expires_at, text in chunk))
    except Exception:  # nothing cached: those heartbeats read the database
        logger.warning("command marker update failed", exc_info=True)
    return cached


def kids_key(kids) -> str:
    return ",".join(sorted(kids))


def _settled_now(device_id, command_id) -> None:
    r = _redis()
    if r is None:
        return
    try:
        r.eval(_SETTLED, 1, PREFIX + str(device_id), str(command_id), CLEAN_TTL_S)
    except Exception:
        logger.error("command marker update failed", exc_info=True)
        dirty_now([device_id])


def settled_on_commit(device_id, command_id) -> None:
    """A report moved the device's delivery of this command out of pending. Inside a transaction
    the marker is deleted now (the database decides until the commit) and settled after it."""
    if transaction.get_connection().in_atomic_block:
        dirty_now([device_id])
        transaction.on_commit(lambda: _settled_now(device_id, command_id))
    else:
        _settled_now(device_id, command_id)
