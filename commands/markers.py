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
- the device's report of that command (which ends pending) turns `iss:` or `pend:` of it into
  `ok:<kids>` (anything else is deleted), before the report's UPDATE and in the same Redis call
  as its token check; the guard key it leaves (`rep:<device>:<command>`) keeps a heartbeat check
  that read the delivery before that UPDATE committed from caching it as pending. When the
  marker is `pend:` of that command (not expired) the same call queues the report for
  PostgreSQL instead (commands.results) and no UPDATE follows.
A heartbeat check (it writes its check token), another command, a cancellation or a key change
each replace or delete the value before any of these, so the compare fails and the database is
asked instead.
"""

import base64
import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import transaction

from commands import crypto
from mdm import redis_client

logger = logging.getLogger(__name__)

PREFIX = f"{settings.CACHE_PREFIX}:cmdq:"
CLEAN_TTL_S = 300
# Keysets kept decrypted per process (_opened): a fleet of this many devices is served without Fernet.
KEYSETS_OPENED = 20000
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
# A device reports a command: the report is about to take this command's delivery out of pending
# (every device status is past `sent`), and the device holds it, so no heartbeat needs to serve it
# again. 'iss:' or 'pend:' of this command meant nothing else was pending: the device is clean
# ('ok:<kids>'); 'ok:' stays; anything else (a check in flight, another command's answer) is
# deleted. The guard key 'rep:<device>:<command>' then keeps a heartbeat check that reads the
# delivery before the report's UPDATE commits from caching it as pending (_CAS_PUSHED): so this
# runs before the UPDATE, not after its commit (one round trip fewer, docs/performance.md).
_SETTLE = """
-- 'pend:<kids>|<expires_at>|<command id>|...' of this command: its kids and expiry, else nil.
local function pending_answer(v, command_id)
  if not v or string.sub(v, 1, 5) ~= 'pend:' then return nil end
  local a = string.find(v, '|', 6, true)
  local b = a and string.find(v, '|', a + 1, true)
  if b and string.sub(v, b + 1, b + #command_id + 1) == command_id .. '|' then
    return string.sub(v, 6, a - 1), tonumber(string.sub(v, a + 1, b - 1))
  end
  return nil
end
local function settle(marker, guard, command_id, ttl)
  redis.call('SET', guard, 1, 'EX', ttl)
  local v = redis.call('GET', marker)
  if not v or string.sub(v, 1, 3) == 'ok:' then return 0 end
  local iss = 'iss:' .. command_id .. ':'
  local kids = pending_answer(v, command_id)
  if string.sub(v, 1, #iss) == iss then kids = string.sub(v, #iss + 1) end
  if kids then
    redis.call('SET', marker, 'ok:' .. kids, 'EX', ttl)
    return 1
  end
  redis.call('DEL', marker)
  return 0
end
"""
# KEYS[1] marker, KEYS[2] guard; ARGV[1] command id, ARGV[2] TTL.
_SETTLED = _SETTLE + "return settle(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))\n"
# A report in one Redis call: the device token's check first (the verified-token cache entry of
# devices.tokens, '<device id>:<digest>', as the heartbeat's call reads it), then:
# - a final report of this command already taken by the write-behind (guard 'f:<status>'): the
#   first final wins, that status is the answer, nothing else happens;
# - the marker is this command's cached answer ('pend:', not expired): the delivery is pending
#   (queued or sent), the device's, and any report moves it; with an entry given (the result
#   write-behind, commands.results) the report is queued for PostgreSQL and the device is clean;
# - otherwise settle() and the caller's UPDATE decides.
# KEYS[1] token entry, KEYS[2] write-behind list; ARGV[1] secret digest, ARGV[2] marker prefix,
# ARGV[3] command id, ARGV[4] TTL, ARGV[5] status, ARGV[6] now (unix s), ARGV[7] entry or ''.
# Returns {'unknown'} (not cached: verify the slow way), {'invalid'}, or {'ok', device id, how}
# with how 'queued', 'sync' or the status of the final already queued.
_REPORTED = _SETTLE + """
local token = redis.call('GET', KEYS[1])
if not token then return {'unknown'} end
local sep = string.find(token, ':', 1, true)
if (not sep) or string.sub(token, sep + 1) ~= ARGV[1] then return {'invalid'} end
local device_id = string.sub(token, 1, sep - 1)
local marker = ARGV[2] .. device_id
local guard = ARGV[2] .. 'rep:' .. device_id .. ':' .. ARGV[3]
local ttl = tonumber(ARGV[4])
local g = redis.call('GET', guard)
if g and string.sub(g, 1, 2) == 'f:' then return {'ok', device_id, string.sub(g, 3)} end
if ARGV[7] ~= '' then
  local kids, expires_at = pending_answer(redis.call('GET', marker), ARGV[3])
  if kids and expires_at and tonumber(ARGV[6]) < expires_at then
    redis.call('RPUSH', KEYS[2], device_id .. '|' .. ARGV[7])
    redis.call('SET', marker, 'ok:' .. kids, 'EX', ttl)
    local final = ARGV[5] ~= 'received' and ARGV[5] ~= 'running'
    redis.call('SET', guard, final and ('f:' .. ARGV[5]) or '1', 'EX', ttl)
    return {'ok', device_id, 'queued'}
  end
end
settle(marker, guard, ARGV[3], ttl)
return {'ok', device_id, 'sync'}
"""
# A heartbeat check's answer for exactly one pending command: as _CAS, unless the device has
# reported that command meanwhile (its guard key: the check may have read the delivery before the
# report's UPDATE committed). KEYS[1] marker, KEYS[2] guard; ARGV as _CAS.
_CAS_PUSHED = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""
# Keys per call of the fleet-wide writes (_ISSUED, _PUSHED, the deletes). Redis runs one command
# at a time and every heartbeat's own call waits behind it: in the command fan-out (2,000
# devices, bench/run.py --fanout-only) calls of 1,000 (500 envelopes per dispatch batch) held it
# 1.2-4.9 ms (_ISSUED) and 2.4-17.6 ms (_PUSHED) in the slowlog. A call of 100 costs a round trip
# more per 100 devices, to the dispatcher, not to the devices.
CHUNK = 100


def _redis():
    return redis_client.client()


def key(device_id) -> str:
    return PREFIX + str(device_id)


def guard_key(device_id, command_id) -> str:
    """Set by the device's report of the command (see _SETTLE), for CLEAN_TTL_S."""
    return f"{PREFIX}rep:{device_id}:{command_id}"


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


KEYSET_PREFIX = f"{PREFIX}keys:"


def keyset_key(device_id) -> str:
    return f"{KEYSET_PREFIX}{device_id}"


def signing_key_prefixes() -> tuple[str, str]:
    """The prefixes of the two keys cached_signing_key reads (the marker, the keyset)."""
    return PREFIX, KEYSET_PREFIX


# The clean marker and, beside it, the device's keyset (what a heartbeat without current `kids`
# is answered as `command_keys`), both only if the check's token still holds. KEYS[1] marker,
# KEYS[2] keyset; ARGV[1] token, ARGV[2] marker value, ARGV[3] keyset value, ARGV[4] TTL.
_CAS_CLEAN_KEYS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], ARGV[3], 'EX', tonumber(ARGV[4]))
  return 1
end
return 0
"""


def finish_clean(device_id: str, token: str | None, kids: str, keyset: list | None = None) -> None:
    """The check found nothing pending. With `keyset` (the answer's command_keys), it is cached
    beside the marker, encrypted (the keys sign commands: Redis never holds them in clear), so a
    heartbeat whose `kids` are absent or stale is answered from Redis too (cached_keyset)."""
    if keyset is None:
        _finish(device_id, token, "ok:" + kids)
        return
    r = _redis()
    if r is None or token is None:
        return
    value = kids + "|" + crypto.encrypt_json(keyset)
    try:
        r.eval(_CAS_CLEAN_KEYS, 2, PREFIX + str(device_id), keyset_key(device_id), token, "ok:" + kids, value, CLEAN_TTL_S)
    except Exception:
        logger.warning("command marker write failed", exc_info=True)


def clean_value(kids) -> str | None:
    """The clean marker of a device whose `kids` are these (what finish_clean writes for it), or
    None when they are not a valid kid list (then no marker matches)."""
    return "ok:" + kids_key(kids) if valid_kids(kids) else None


def valid_kids(kids) -> bool:
    """A heartbeat's `kids` as PROTOCOL.md has them: a list of at most 10 short strings."""
    return isinstance(kids, list) and len(kids) <= 10 and all(isinstance(k, str) and 0 < len(k) <= 16 for k in kids)


def cached_keyset(device_id, clean_kids: str) -> list | None:
    """The command_keys cached with the clean marker whose kids are `clean_kids`, or None (then
    the database answers). Valid only for that marker: every key change deletes both."""
    r = _redis()
    if r is None:
        return None
    try:
        raw = r.get(keyset_key(device_id))
    except Exception:
        return None
    return unseal_keyset(raw, clean_kids)


def unseal_keyset(raw: bytes | None, clean_kids: str) -> list | None:
    """A keyset value read from Redis (by cached_keyset, or by the heartbeat's own Lua call), if it
    belongs to the clean marker whose kids are `clean_kids`."""
    if raw is None:
        return None
    kids, _, sealed = raw.decode().partition("|")
    if kids != clean_kids:
        return None
    try:
        return _opened(sealed)
    except Exception:  # a rotated field key: the database answers, and the check rewrites it
        return None


@lru_cache(maxsize=KEYSETS_OPENED)
def _opened(sealed: str) -> list:
    """A sealed keyset, decrypted once per process: every heartbeat without current `kids` and
    every policy fetch of a device reads the same sealed value until its keys change (then the
    value changes and the old entry ages out). The web process holds these keys in memory anyway
    whenever it signs; Redis still never holds them in clear. Callers must not change the list."""
    return crypto.decrypt_json(sealed)


def cached_signing_key(device_id) -> tuple[str, bytes] | None:
    """(kid, key) of the device's current key from the keyset cached with its clean marker, in one
    MGET, or None (then the database answers). The keyset's first entry is the signing key: the
    check that cached it had made sure of a current one (commands.services.delivery)."""
    r = _redis()
    if r is None:
        return None
    try:
        marker, raw = r.mget(PREFIX + str(device_id), keyset_key(device_id))
    except Exception:
        return None
    return signing_key_of(marker, raw)


def signing_key_of(marker: bytes | None, raw: bytes | None) -> tuple[str, bytes] | None:
    """cached_signing_key from values already read (the policy fetch reads them with its token
    check: devices.tokens.verify_with, prefixes `signing_key_prefixes`)."""
    clean = parse_clean(marker)
    keys = unseal_keyset(raw, clean) if clean is not None else None
    if not keys:
        return None
    try:
        return keys[0]["kid"], base64.b64decode(keys[0]["key"])
    except (KeyError, TypeError, ValueError):
        return None


def finish_pushed(device_id: str, token: str | None, kids: str, expires_at: int, command_id, envelope: str) -> None:
    """The check found exactly one pending command: its answer, if nothing changed meanwhile
    and the device has not reported that command (see _CAS_PUSHED)."""
    _finish(device_id, token, pushed_value(kids, expires_at, command_id, envelope), guard=guard_key(device_id, command_id))


def _finish(device_id, token: str | None, value: str, guard: str | None = None) -> None:
    r = _redis()
    if r is None or token is None:
        return
    try:
        if guard is None:
            r.eval(_CAS, 1, PREFIX + str(device_id), token, value, CLEAN_TTL_S)
        else:
            r.eval(_CAS_PUSHED, 2, PREFIX + str(device_id), guard, token, value, CLEAN_TTL_S)
    except Exception:
        logger.warning("command marker write failed", exc_info=True)


def dirty_now(device_ids) -> None:
    r = _redis()
    if r is None:
        return
    ids = [PREFIX + str(d) for d in device_ids] + [keyset_key(d) for d in device_ids]
    try:
        for start in range(0, len(ids), CHUNK):
            r.delete(*ids[start : start + CHUNK])
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


def clean_on_commit(device_id, kids: str, keyset: list | None = None) -> None:
    """The device has nothing pending once this transaction commits (an enrollment: new keys,
    every earlier delivery ended), so its first heartbeat needs no database check. The check
    token written now makes the write after commit a compare-and-set: anything that gives the
    device work first (a command issued right after the commit) replaces or deletes it. With
    `keyset`, its keys are cached beside it (finish_clean), as a heartbeat's check would."""
    token = begin_check(device_id)
    transaction.on_commit(lambda: finish_clean(device_id, token, kids, keyset))


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


def settle_reported(device_id, command_id) -> None:
    """Call before the UPDATE that applies the device's report of this command (see _SETTLE)."""
    r = _redis()
    if r is None:
        return
    try:
        r.eval(_SETTLED, 2, key(device_id), guard_key(device_id, command_id), str(command_id), CLEAN_TTL_S)
    except Exception:
        logger.error("command marker update failed", exc_info=True)
        dirty_now([device_id])


@lru_cache(maxsize=2)
def _reported_script(client):
    return client.register_script(_REPORTED)  # EVALSHA: the script's text is not sent per report


@dataclass(frozen=True)
class Report:
    auth: str  # "ok"; "unknown": the token is not in the verified-token cache; "invalid"
    device_id: str | None = None
    # With auth "ok": "queued" (taken by the result write-behind), "sync" (the marker is settled,
    # the caller's UPDATE applies the report), or the final status a queued report already holds.
    outcome: str | None = None


def report(*, token_key: str, digest: str, command_id, status: str, now_s: int, results_key: str,
           entry: str = "") -> Report:
    """The device token's check, and the report queued or the marker settled, in one Redis call
    (see _REPORTED); auth "unknown" without Redis. `token_key`/`digest`: as for the heartbeat
    (devices.tokens); `entry`: the write-behind's encoding of the report, "" to never queue it."""
    r = _redis()
    if r is None:
        return Report(auth="unknown")
    answer = _reported_script(r)(keys=[token_key, results_key],
                                 args=[digest, PREFIX, str(command_id), CLEAN_TTL_S, status, now_s, entry])
    auth = answer[0].decode()
    if auth != "ok":
        return Report(auth=auth)
    return Report(auth=auth, device_id=answer[1].decode(), outcome=answer[2].decode())
