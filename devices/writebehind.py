"""Heartbeat write-behind: the hot path writes to Redis, a flusher writes to PostgreSQL in bulk.

Measured on the 2-core bench (docs/performance.md): one PostgreSQL statement per heartbeat put
~0.5 core of PostgreSQL backends and a commit on every request; the heartbeat topped out near
1,300/s. With this module a heartbeat is one Lua call in Redis (merge the fields into the
device's latest state, decide the 10 s history sample, note the device dirty, and read back what
the answer needs, the command marker included), and `flush()` turns each second's heartbeats
into one UPDATE ... FROM unnest(<one array per column>) and one INSERT ... SELECT FROM unnest.

What it costs: the status and history in PostgreSQL trail by up to the flush interval (1 s;
the offline sweep and the live-update flush run `flush()` first, so they never act on stale
rows), and a Redis crash loses at most that second of telemetry, which the next heartbeat
replaces. Enabled when Redis is configured (HEARTBEAT_WRITE_BEHIND, default on); the embedded
default writes directly.

A flush is never stopped by one entry, and loses nothing when its process dies (issue 14):
- *Isolation.* Values are checked at the edge (devices.telemetry), and independently of that
  the flush writes through `mdm.deadletters.isolate`: an entry PostgreSQL refuses is set aside
  as a dead letter with its reason (and a poisoned state is dropped from Redis, so the next
  heartbeat starts clean), the rest lands. A database that is away fails the flush as a whole:
  the claim goes back to the queue for the next one.
- *Claimed, not popped.* `take()` moves the dirty ids, their bad-envelope counts and the history
  samples into keys of its own claim (one Lua call), registered with its time in a sorted set;
  `release()` deletes the claim only after the commit. A flusher that dies leaves its claim; the
  next flush puts claims older than WRITE_BEHIND_CLAIM_STALE_S back in the queue. Writing a
  claim twice is harmless for states (the newest `last_seen` wins) and samples (ON CONFLICT DO
  NOTHING). Bad-envelope counts are added, so a claim holding some is written exactly once by a
  ledger row (devices.models.FlushClaim) in the same transaction: `applied` by the flush, or
  `abandoned` by the flush that finds it stale, whichever commits first (the primary key makes the
  later one wait and then read the outcome); only an abandoned claim is put back.

Keys (single Redis; they are not hash-tagged for Redis Cluster):
  {p}hb:s:<device id>    latest state, JSON (every heartbeat field seen, last_seen, ...)
  {p}hb:dirty            set of device ids whose state is not yet in PostgreSQL
  {p}hb:hist             list of history samples to insert
  {p}hb:bad              hash device id -> bad_envelopes not yet added
  {p}hb:inv:<device id>  the stored inventory's hash (set by replace_inventory)
  {p}hb:claims           sorted set: claim id -> when it was taken (ms)
  {p}hb:c:<claim>:ids|bad|hist   what a flush has taken and not yet committed
The heartbeat's call also reads the verified-token entry (devices.tokens.cache_key) and the
command marker (commands.markers), and marks console-visible changes in devices.live's keys.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from devices import telemetry
from devices.models import DeviceStatus, FlushClaim
from mdm import deadletters, metrics, redis_client
from mdm.claimqueue import in_caller_transaction

logger = logging.getLogger(__name__)

STATE_TTL_S = 7 * 86400
FLUSH_BATCH = 5000
INV_TTL_S = 7 * 86400

# One heartbeat, one round trip: authenticate the token against the verified-token cache
# (devices.tokens), merge the fields into the device's latest state, decide the 10 s history
# sample, mark the device dirty for the flusher and, on a change the list shows (came online,
# battery, charging) or when a console has the device's own page open (it shows every heartbeat's
# last seen, memory, foreground app), for the live-update flush too; read back what the answer needs.
# The device's own keys are built here from its id (read from the token entry): fine on one
# Redis, which is what this module supports (see the module docstring).
# KEYS: 1 token entry, 2 dirty set, 3 history list, 4 bad hash, 5 live dirty set, 6 live pending,
#       7 open pages hash (mdm.realtime)
# ARGV: 1 secret digest, 2 values (JSON), 3 now (us), 4 history every (us), 5 offline after (us),
#       6 state TTL (s), 7 bad envelopes, 8 sample columns, 9 state key prefix,
#       10 inventory key prefix, 11 command marker prefix, 12 live pending TTL (s),
#       13 policy version key prefix, 14 device page topic prefix, 15 the marker a device sending
#       these `kids` needs no keys for ("": none): any other clean marker ("ok:...") makes the call
#       read the keyset cached beside it (<marker prefix>keys:<device>), saving a round trip
_RECORD = """
local token = redis.call('GET', KEYS[1])
if not token then return '{"auth":"unknown"}' end
local sep = string.find(token, ':', 1, true)
-- Not a constant-time compare: both sides are SHA-256 digests of a 256-bit secret, and learning
-- a digest's prefix tells nothing about the secret.
if (not sep) or string.sub(token, sep + 1) ~= ARGV[1] then return '{"auth":"invalid"}' end
local device_id = string.sub(token, 1, sep - 1)
local state_key = ARGV[9] .. device_id
local state = {}
local raw = redis.call('GET', state_key)
if raw then state = cjson.decode(raw) end
-- Times are integer microseconds kept as strings: cjson writes numbers with 14 digits only.
local now = tonumber(ARGV[3])
local last_seen = tonumber(state.last_seen or '')
local last_history = tonumber(state.last_history_at or '')
local was_online = false
if last_seen and (now - last_seen) <= tonumber(ARGV[5]) then was_online = true end
local old_battery, old_charging = state.battery_pct, state.charging
for k, v in pairs(cjson.decode(ARGV[2])) do state[k] = v end
state.last_seen = ARGV[3]
local took = false
if (not last_history) or (now - last_history >= tonumber(ARGV[4])) then
  state.last_history_at = ARGV[3]
  took = true
  local sample = {device_id, ARGV[3]}
  local i = 3
  for column in string.gmatch(ARGV[8], '[^,]+') do
    local v = state[column]
    if v == nil then v = cjson.null end
    sample[i] = v
    i = i + 1
  end
  redis.call('RPUSH', KEYS[3], cjson.encode(sample))
end
local bad = tonumber(ARGV[7])
if bad > 0 then
  redis.call('HINCRBY', KEYS[4], device_id, bad)
  state.last_bad_envelope_at = ARGV[3]
end
redis.call('SET', state_key, cjson.encode(state), 'EX', tonumber(ARGV[6]))
redis.call('SADD', KEYS[2], device_id)
local live_flush = false
if (not was_online) or old_battery ~= state.battery_pct or old_charging ~= state.charging
    or redis.call('HEXISTS', KEYS[7], ARGV[14] .. device_id) == 1 then
  redis.call('SADD', KEYS[5], device_id)
  live_flush = redis.call('SET', KEYS[6], 1, 'NX', 'EX', tonumber(ARGV[12])) ~= false
end
local marker = redis.call('GET', ARGV[11] .. device_id)
local keyset = false
if marker and marker ~= ARGV[15] and string.sub(marker, 1, 3) == 'ok:' then
  keyset = redis.call('GET', ARGV[11] .. 'keys:' .. device_id)
end
return cjson.encode({
  auth = 'ok', device_id = device_id, took = took, live_flush = live_flush,
  inventory_hash = redis.call('GET', ARGV[10] .. device_id), marker = marker,
  policy = redis.call('GET', ARGV[13] .. device_id), keyset = keyset
})
"""

_REQUEUE_FN = """
local function chunked(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
-- A claim's ids, counts and samples back in the queue; the claim deleted.
local function requeue(cid, dirty, bad, hist, claims, prefix)
  local base = prefix .. cid
  chunked('SADD', dirty, redis.call('SMEMBERS', base .. ':ids'))
  local counts = redis.call('HGETALL', base .. ':bad')
  for i = 1, #counts, 2 do
    -- pcall: a count someone wrote by hand that is not an integer must not stop every flush
    redis.pcall('HINCRBY', bad, counts[i], counts[i + 1])
  end
  chunked('RPUSH', hist, redis.call('LRANGE', base .. ':hist', 0, -1))
  redis.call('DEL', base .. ':ids', base .. ':bad', base .. ':hist')
  redis.call('ZREM', claims, cid)
end
"""
# A flush's claim, in one call: first the claims of flushers that died (older than the stale
# cutoff) go back in the queue, except those holding bad-envelope counts, which are returned for
# the ledger check (see the module docstring); then up to N dirty ids (with their bad counts)
# and up to N history samples move into this flush's claim keys, registered in the claims set.
# KEYS: 1 dirty set, 2 bad hash, 3 history list, 4 claims set
# ARGV: 1 claim id, 2 limit, 3 now (ms), 4 stale cutoff (ms), 5 claim key prefix
# Returns {ids, flat bad counts, samples, stale claims holding counts, claims put back}.
_TAKE = _REQUEUE_FN + """
local limit = tonumber(ARGV[2])
local held, requeued = {}, 0
for _, cid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[4], 'LIMIT', 0, 100)) do
  if redis.call('EXISTS', ARGV[5] .. cid .. ':bad') == 1 then
    table.insert(held, cid)
  else
    requeue(cid, KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[5])
    requeued = requeued + 1
  end
end
local base = ARGV[5] .. ARGV[1]
local ids, counts, samples = {}, {}, {}
if limit > 0 then
  ids = redis.call('SPOP', KEYS[1], limit)
  samples = redis.call('LRANGE', KEYS[3], 0, limit - 1)
end
if #ids > 0 then
  chunked('SADD', base .. ':ids', ids)
  local n = redis.call('HLEN', KEYS[2])
  if n > 0 then
    -- Walk the smaller side: usually the hash is empty or tiny.
    if n <= #ids then
      local taken = {}
      for _, id in ipairs(ids) do taken[id] = true end
      local all = redis.call('HGETALL', KEYS[2])
      for i = 1, #all, 2 do
        if taken[all[i]] then
          table.insert(counts, all[i]); table.insert(counts, all[i + 1])
        end
      end
    else
      for _, id in ipairs(ids) do
        local v = redis.call('HGET', KEYS[2], id)
        if v then table.insert(counts, id); table.insert(counts, v) end
      end
    end
    for i = 1, #counts, 2 do
      redis.call('HSET', base .. ':bad', counts[i], counts[i + 1])
      redis.call('HDEL', KEYS[2], counts[i])
    end
  end
end
if #samples > 0 then
  redis.call('LTRIM', KEYS[3], #samples, -1)
  chunked('RPUSH', base .. ':hist', samples)
end
if #ids > 0 or #samples > 0 then redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1]) end
return {ids, counts, samples, held, requeued}
"""
# One claim back in the queue (ARGV[2] '1') or dropped (its writes committed: '0'); nothing when
# it is gone already (another flush settled it). KEYS as _TAKE; ARGV: 1 claim id, 2 put back?,
# 3 claim key prefix. Returns 1 when this call settled it.
_SETTLE = _REQUEUE_FN + """
if redis.call('ZSCORE', KEYS[4], ARGV[1]) == false then return 0 end
if ARGV[2] == '1' then
  requeue(ARGV[1], KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3])
else
  local base = ARGV[3] .. ARGV[1]
  redis.call('DEL', base .. ':ids', base .. ':bad', base .. ':hist')
  redis.call('ZREM', KEYS[4], ARGV[1])
end
return 1
"""
# Drop states a flush set aside, unless a heartbeat changed them meanwhile (then the next flush
# tries again). KEYS: state keys; ARGV: their values as the flush read them.
_FORGET_IF_UNCHANGED = """
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[i] then redis.call('DEL', k); n = n + 1 end
end
return n
"""


def enabled() -> bool:
    """Redis configured, PostgreSQL behind (the flush's statements are PostgreSQL's), not switched off."""
    return bool(settings.REDIS_URL) and connection.vendor == "postgresql" and getattr(settings, "HEARTBEAT_WRITE_BEHIND", True)


@dataclass(frozen=True)
class _Scripts:
    record: object
    take: object
    settle: object
    forget_if_unchanged: object


@lru_cache(maxsize=2)
def _scripts_for(client) -> _Scripts:
    return _Scripts(*(client.register_script(x) for x in (_RECORD, _TAKE, _SETTLE, _FORGET_IF_UNCHANGED)))


def _client():
    client = redis_client.client()
    return client, _scripts_for(client)


def _key(name: str) -> str:
    return f"{settings.CACHE_PREFIX}:hb:{name}"


def state_key(device_id) -> str:
    return _key(f"s:{device_id}")


def inventory_key(device_id) -> str:
    return _key(f"inv:{device_id}")


@dataclass(frozen=True)
class Recorded:
    auth: str  # "ok"; "unknown": the token is not in the verified-token cache; "invalid"
    device_id: str | None = None
    took_history: bool = False
    live_flush: bool = False  # a change a console shows (or an open page), and no live-update flush scheduled yet
    inventory_hash: str | None = None  # None: not cached in Redis yet
    marker: bytes | None = None  # the command marker (commands.markers), read in the same call
    policy: bytes | None = None  # the policy version cache (devices.hooks.policy_prefix), likewise
    keyset: bytes | None = None  # the keyset cached beside a clean marker the sent kids do not match


def record(*, token_key: str, digest: str, values: dict, now: datetime, history_every_s: int,
           offline_after_s: int, bad: int, marker_prefix: str, live_keys: tuple[str, str, str],
           live_pending_ttl_s: int, policy_prefix: str | None = None, page_prefix: str = "device.",
           marker_expected: str | None = None) -> Recorded:
    """One heartbeat in one Lua call (see _RECORD). `token_key`/`digest`: the device token's
    entry in the verified-token cache and the SHA-256 of the presented secret."""
    client, scripts = _client()
    raw = scripts.record(
        keys=[token_key, _key("dirty"), _key("hist"), _key("bad"), *live_keys],
        args=[digest, json.dumps(values), str(_micros(now)), history_every_s * 1_000_000, offline_after_s * 1_000_000,
              STATE_TTL_S, bad, ",".join(telemetry.SAMPLE_COLUMNS), state_key(""), inventory_key(""), marker_prefix,
              live_pending_ttl_s, policy_prefix if policy_prefix is not None else state_key("nopolicy:"), page_prefix,
              marker_expected or ""],
    )
    data = json.loads(raw)
    if data["auth"] != "ok":
        return Recorded(auth=data["auth"])
    inventory = data.get("inventory_hash")
    marker = data.get("marker")
    policy = data.get("policy")
    keyset = data.get("keyset")
    return Recorded(
        auth="ok",
        device_id=data["device_id"],
        took_history=data["took"] is True,
        live_flush=data["live_flush"] is True,
        inventory_hash=inventory if isinstance(inventory, str) else None,  # cjson: a missing key is false
        marker=marker.encode() if isinstance(marker, str) else None,
        policy=policy.encode() if isinstance(policy, str) else None,
        keyset=keyset.encode() if isinstance(keyset, str) else None,
    )


def remember_inventory_hash(device_id, value: str) -> None:
    client, _ = _client()
    client.set(inventory_key(device_id), value or "", ex=INV_TTL_S)


def forget_states(device_ids) -> None:
    if device_ids:
        client, _ = _client()
        client.delete(*[state_key(i) for i in device_ids])


def forget_inventory_hash(device_id) -> None:
    client, _ = _client()
    client.delete(inventory_key(device_id))


def overlay(statuses) -> int:
    """Read-your-writes for people (docs/performance.md): the console and the API show what a
    device sent as soon as it has its 200, not after the next flush. For the given (unsaved)
    DeviceStatus rows, one MGET reads their Redis states; a state newer than the row is laid over
    it in memory. O(1) per device, nothing written. Returns how many rows changed."""
    rows = [s for s in statuses if s is not None]
    if not rows or not enabled():
        return 0
    try:
        client, _ = _client()
        raws = client.mget([state_key(s.device_id) for s in rows])
    except Exception:  # Redis away: the rows as PostgreSQL has them
        return 0
    coercers, types, changed = _coercers(), _types(), 0
    for status, raw in zip(rows, raws):
        if raw is None:
            continue
        try:
            state = json.loads(raw)
            seen = _epoch(state["last_seen"])
        except (ValueError, TypeError, KeyError):
            continue
        if status.last_seen is not None and seen <= status.last_seen:
            continue
        status.last_seen, status.online = seen, True
        for column, coerce in coercers.items():
            if column not in state:
                continue
            try:
                value = state[column]
                setattr(status, column, ([] if value == {} else value) if types[column] == "jsonb" else coerce(value))
            except (ValueError, TypeError):
                continue  # the flush will set it aside; show the stored value
        changed += 1
    return changed


# --- flushing ----------------------------------------------------------------------------------

def _column_types() -> dict[str, str]:
    return {column: DeviceStatus._meta.get_field(column).db_type(connection)
            for column in (*telemetry.STATUS_COLUMNS, "clock_drift_s")}


_INTEGER_TYPES = ("smallint", "integer", "bigint")
_FLOAT_TYPES = ("double precision", "real")


def _coerce(db_type: str):
    """What a column's values must be in Python before they go into one typed array: JSON through
    Lua's cjson gives back 31.0 as 31 and big integers as floats, and psycopg refuses an array
    mixing int and float. Raises (ValueError, TypeError...) for a value that is not of the kind:
    the flush sets that entry aside."""
    if db_type in _FLOAT_TYPES:
        return lambda v: None if v is None else float(v)
    if db_type in _INTEGER_TYPES:
        return lambda v: None if v is None else _integer(v)
    if db_type == "boolean":
        return lambda v: None if v is None else _boolean(v)
    if db_type == "date":
        return lambda v: None if v is None else date.fromisoformat(v)
    if db_type == "jsonb":
        # cjson writes an empty array as {}: `kids` must stay a list.
        return lambda v: None if v is None else json.dumps([] if v == {} else v)
    return lambda v: v if v is None or isinstance(v, str) else _not_text(v)


def _integer(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError("not an integer")
    return int(value)


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


def _not_text(value):
    raise ValueError(f"not text: {type(value).__name__}")


def _micros(moment: datetime) -> int:
    # Integer microseconds: exact in Lua's doubles (< 2^53), so "10 s later" compares exactly.
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _epoch(micros) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Claim:
    """What one flush took from the queue (raw, as Redis holds it); see take()."""

    id: str
    device_ids: list[str] = field(default_factory=list)
    bad: dict[str, bytes] = field(default_factory=dict)  # device id -> count, as queued
    samples: list[bytes] = field(default_factory=list)
    late: int = 0  # stale claims put back after this one was taken (see take())

    @property
    def taken(self) -> int:
        return max(len(self.device_ids), len(self.samples))

    def __bool__(self) -> bool:
        return bool(self.device_ids or self.samples)


@dataclass
class Flushed:
    taken: int = 0  # device ids or samples taken, whichever more
    written: int = 0  # device states written
    dead: int = 0  # entries set aside (mdm.deadletters)
    requeued: int = 0  # claims of dead flushers put back in the queue
    again: bool = False  # more is waiting: a full batch, or claims put back after this one's take


class _TakenOver(Exception):
    """The claim was found stale and abandoned by another flush before this one committed."""


def _keys() -> list[str]:
    return [_key("dirty"), _key("bad"), _key("hist"), _key("claims")]


def _claim_prefix() -> str:
    return _key("c:")


def _stale_s(stale_s: float | None) -> float:
    return settings.WRITE_BEHIND_CLAIM_STALE_S if stale_s is None else stale_s


def take(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> tuple[Claim, int]:
    """Put back the claims of flushers that died (older than `stale_s`, default
    WRITE_BEHIND_CLAIM_STALE_S), then claim up to `limit` dirty devices and history samples.
    Returns (the claim, how many stale claims were put back). The claim stays in Redis until
    release(); a flusher that dies before that leaves it for a later take(). Stale claims holding
    bad-envelope counts are checked against the ledger after this claim is taken, so what they
    put back waits for the next take (`Claim.late`)."""
    client, scripts = _client()
    claim_id = uuid.uuid4().hex
    now_ms = int(time.time() * 1000)
    cutoff_ms = now_ms - int(_stale_s(stale_s) * 1000)
    ids, counts, samples, held, requeued = scripts.take(
        keys=_keys(), args=[claim_id, limit, now_ms, cutoff_ms, _claim_prefix()])
    late = sum(_settle_stale(stale.decode()) for stale in held)
    requeued += late
    if requeued:
        metrics.WRITEBEHIND_REQUEUED.labels("heartbeats").inc(requeued)
        logger.warning("heartbeat flush: put back %d claim(s) of a flusher that died", requeued)
    claim = Claim(
        id=claim_id,
        device_ids=[i.decode() for i in ids],
        bad={counts[i].decode(): counts[i + 1] for i in range(0, len(counts), 2)},
        samples=list(samples),
        late=late,
    )
    return claim, requeued


def requeue_stale(*, stale_s: float | None = None) -> int:
    """Only the first half of take(): put back the claims older than `stale_s`. Returns how many."""
    return take(0, stale_s=stale_s)[1]


def claims() -> dict[str, float]:
    """Claims taken and not yet released: claim id -> age in seconds."""
    client, _ = _client()
    now = time.time()
    return {cid.decode(): now - score / 1000 for cid, score in client.zrange(_key("claims"), 0, -1, withscores=True)}


def _settle_stale(claim_id: str) -> int:
    """A stale claim holding bad-envelope counts: put back only if its writes never committed.
    The ledger row decides (devices.models.FlushClaim): inserting `abandoned` waits for a flush
    still writing the claim, then either wins (the claim goes back) or finds `applied` (the claim
    is dropped). Returns 1 when it was put back. A database that is away: left for the next try."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            cursor.execute(
                f"INSERT INTO {FlushClaim._meta.db_table} (claim, state, at) VALUES (%s, %s, now()) "
                "ON CONFLICT (claim) DO NOTHING",
                [claim_id, FlushClaim.State.ABANDONED],
            )
            cursor.execute(f"SELECT state FROM {FlushClaim._meta.db_table} WHERE claim = %s", [claim_id])
            state = cursor.fetchone()[0]
    except (OperationalError, InterfaceError):
        logger.warning("heartbeat flush: stale claim %s left for later (database unavailable)", claim_id)
        return 0
    except Exception:  # e.g. the ledger's table not migrated yet: this flush goes on, the claim waits
        logger.exception("heartbeat flush: stale claim %s left for later", claim_id)
        return 0
    put_back = state == FlushClaim.State.ABANDONED
    client, scripts = _client()
    settled = scripts.settle(keys=_keys(), args=[claim_id, "1" if put_back else "0", _claim_prefix()])
    return int(put_back and settled == 1)


def release(claim: Claim, letters=()) -> None:
    """After the commit: the claim's keys go and its dead letters are kept, in one MULTI."""
    client, _ = _client()
    base = _claim_prefix() + claim.id
    pipe = client.pipeline(transaction=True)
    deadletters.queue_on(pipe, letters)
    pipe.delete(f"{base}:ids", f"{base}:bad", f"{base}:hist")
    pipe.zrem(_key("claims"), claim.id)
    pipe.execute()
    deadletters.counted(letters)


def _give_back(claim: Claim) -> None:
    """The write failed for a reason that is no entry's fault (the database went away): the claim
    goes back in the queue now, for the next flush. One holding bad counts goes through the ledger
    (the failure may have been at COMMIT, after the writes landed); if even that fails it waits
    for a later flush to find it stale."""
    try:
        if claim.bad:
            _settle_stale(claim.id)
        else:
            _, scripts = _client()
            scripts.settle(keys=_keys(), args=[claim.id, "1", _claim_prefix()])
    except Exception:  # Redis away as well: the claim stays, a later flush finds it stale
        logger.warning("heartbeat flush: claim %s left for a later flush", claim.id, exc_info=True)


def flush(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> int:
    """Writes dirty device states and pending history samples to PostgreSQL. Returns the number
    of states written. Safe to run concurrently (each item is claimed by exactly one flusher)."""
    return flush_batch(limit, stale_s=stale_s).written


def flush_batch(limit: int = FLUSH_BATCH, *, stale_s: float | None = None) -> Flushed:
    """One batch: take(), write, release(). What it could not write is in mdm.deadletters."""
    if not enabled() or in_caller_transaction():
        return Flushed()
    claim, requeued = take(limit, stale_s=stale_s)
    if not claim:
        return Flushed(requeued=requeued, again=claim.late > 0)
    client, scripts = _client()
    try:
        raw_states = client.mget([state_key(i) for i in claim.device_ids]) if claim.device_ids else []
        written, letters, poisoned = write(claim, raw_states)
    except _TakenOver:
        logger.warning("heartbeat flush: claim %s was taken over by another flush", claim.id)
        return Flushed(requeued=requeued, again=True)
    except Exception:
        _give_back(claim)
        raise
    if poisoned:
        # A set-aside state would be merged into by the device's next heartbeat and fail again:
        # drop it (unless a heartbeat changed it meanwhile), so that heartbeat starts clean.
        scripts.forget_if_unchanged(keys=list(poisoned), args=list(poisoned.values()))
    release(claim, letters)
    if letters:
        logger.error("heartbeat flush: %d entries set aside as dead letters", len(letters))
    return Flushed(taken=claim.taken, written=written, dead=len(letters), requeued=requeued,
                   again=claim.taken >= limit or claim.late > 0)


def write(claim: Claim, raw_states: list[bytes | None]) -> tuple[int, list, dict]:
    """The claim's states and samples in one transaction, each entry PostgreSQL refuses set aside.
    Returns (states written, dead letters, {state key: raw value} of states set aside)."""
    letters, poisoned = [], {}
    states = {}
    coercers = _coercers()  # looked up once: `connection` is a thread-local proxy, slow per value
    for device_id, raw in zip(claim.device_ids, raw_states):
        count = claim.bad.get(device_id)
        try:
            state = _state_row(device_id, raw, count, coercers)
        except Exception as exc:  # this entry's own fault (ENTRY_ERRORS or any malformation)
            letters.append(_state_letter(device_id, raw, count, exc))
            if raw is not None:
                poisoned[state_key(device_id)] = raw
            continue
        if state is not None:
            states[device_id] = state
    samples = []
    spec = _sample_spec(connection.vendor)
    for raw in claim.samples:
        try:
            samples.append(_sample_row(raw, spec))
        except Exception as exc:
            letters.append(deadletters.letter("heartbeat_sample", raw, exc, device_id=_device_of_sample(raw)))

    def body(isolate):
        if claim.bad:
            _mark_applied(claim.id)
        return _write_states(states, isolate), _write_samples(samples, isolate)

    bad_states, bad_samples = deadletters.write_isolating(body)
    for row, exc in bad_states:
        letters.append(_state_letter(row.device_id, row.raw, claim.bad.get(row.device_id), exc))
        if row.raw is not None:
            poisoned[state_key(row.device_id)] = row.raw
    for row, exc in bad_samples:
        letters.append(deadletters.letter("heartbeat_sample", row.raw, exc, device_id=str(row.values[0])))
    return len(states) - len(bad_states), letters, poisoned


def _mark_applied(claim_id: str) -> None:
    """The ledger row of a claim holding bad counts, in the flush's own transaction (see
    FlushClaim). A stale-claim check that wrote `abandoned` first wins: this flush then writes
    nothing (that check puts the claim back, or has)."""
    table = FlushClaim._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (claim, state, at) VALUES (%s, %s, now()) ON CONFLICT (claim) DO NOTHING RETURNING claim",
            [claim_id, FlushClaim.State.APPLIED],
        )
        if cursor.fetchone() is None:
            raise _TakenOver(claim_id)
        # Keep the ledger short: a claim older than this was settled long ago.
        cursor.execute(f"DELETE FROM {table} WHERE at < now() - make_interval(secs => %s)", [LEDGER_KEEP_S])


LEDGER_KEEP_S = 7 * 86400


def _state_letter(device_id: str, raw: bytes | None, count: bytes | None, exc: BaseException):
    reason = deadletters.describe(exc)
    if count is not None:  # claimed with the state, set aside with it
        reason += f" ({count.decode('utf-8', 'replace')[:24]} bad envelopes not counted)"
    return deadletters.letter("heartbeat_state", raw if raw is not None else b"", reason, device_id=device_id)


def _device_of_sample(raw: bytes) -> str | None:
    try:
        return str(json.loads(raw)[0])[:64]
    except Exception:
        return None


@dataclass
class _Row:
    device_id: str
    raw: bytes | None  # the state as Redis held it
    present: tuple  # the state's columns present (a group shares one statement)
    values: tuple  # device_id, last_seen, last_history_at, bad, bad_at, *present values (coerced)


def _state_row(device_id: str, raw: bytes | None, count, coercers: dict) -> _Row | None:
    """One state as its statement's row; raises for a malformed entry. None: nothing to write
    (the state expired and no bad count waits)."""
    bad = 0
    if count is not None:
        bad = _integer(int(count))
        if not 0 <= bad < 2**63:
            raise ValueError("bad_envelopes count out of range")
    if raw is None:
        if not bad:
            return None
        # The state is gone (expired, or dropped by the offline sweep right after a heartbeat),
        # but its count was claimed: count it now, with the flush's time.
        return _Row(device_id, None, (), (uuid.UUID(device_id), None, None, bad, timezone.now()))
    state = json.loads(raw)  # bytes: strict UTF-8
    if not isinstance(state, dict):
        raise ValueError("state is not a JSON object")
    present = tuple(c for c in coercers if c in state)
    bad_at = state.get("last_bad_envelope_at")
    values = (
        uuid.UUID(device_id),
        _epoch(state["last_seen"]),
        _epoch(state["last_history_at"]) if state.get("last_history_at") else None,
        bad,
        _epoch(bad_at) if bad_at else (timezone.now() if bad else None),
        *(coercers[c](state[c]) for c in present),
    )
    return _Row(device_id, raw, present, values)


@lru_cache(maxsize=1)
def _types_cached(vendor: str) -> dict[str, str]:
    return _column_types()


def _types() -> dict[str, str]:
    return _types_cached(connection.vendor)


@lru_cache(maxsize=1)
def _coercers_cached(vendor: str) -> dict:
    return {c: _coerce(t) for c, t in _column_types().items()}


def _coercers() -> dict:
    return _coercers_cached(connection.vendor)


def _write_states(rows: dict[str, _Row], isolate=deadletters.isolate) -> list[tuple[_Row, BaseException]]:
    """Returns the rows set aside, with their errors."""
    from mdm.models import FleetSettings

    types = _types()
    threshold = FleetSettings.current().offline_threshold_s
    # Group by the set of fields present: a field a device never sent keeps its stored value.
    groups: dict[tuple, list[_Row]] = {}
    for row in rows.values():
        groups.setdefault(row.present, []).append(row)
    bad = []
    for present, group in groups.items():
        columns = ["device_id", "last_seen", "last_history_at", "bad", "bad_at", *present]
        casts = ["uuid", "timestamptz", "timestamptz", "bigint", "timestamptz", *(types[c] for c in present)]
        # One array per column, unnested: the statement text is the same for 10 rows or 5,000,
        # which spares psycopg composing (and PostgreSQL parsing) thousands of placeholders.
        source = "unnest(" + ", ".join(f"%s::{t}[]" for t in casts) + ")"
        # Two flushers can hold states of one device taken a moment apart; the older one must
        # not overwrite the newer (SET sees the row as it was before this statement). A claim
        # written twice (its flusher died after the commit) changes nothing the second time.
        newer = "(s.last_seen IS NULL OR v.last_seen >= s.last_seen)"
        assignments = ", ".join(f"{c} = CASE WHEN {newer} THEN v.{c} ELSE s.{c} END" for c in present)
        sql = f"""
            UPDATE devices_devicestatus AS s SET
                last_seen = GREATEST(s.last_seen, v.last_seen),
                online = GREATEST(s.last_seen, v.last_seen) >= now() - make_interval(secs => %s),
                last_history_at = COALESCE(v.last_history_at, s.last_history_at),
                bad_envelopes_total = s.bad_envelopes_total + v.bad,
                last_bad_envelope_at = COALESCE(v.bad_at, s.last_bad_envelope_at)
                {", " + assignments if assignments else ""}
            FROM {source} AS v({", ".join(columns)})
            WHERE s.device_id = v.device_id
            RETURNING s.device_id
        """

        def execute(batch, sql=sql):
            with connection.cursor() as cursor:
                cursor.execute(sql, [threshold, *(list(column) for column in zip(*(r.values for r in batch)))])
                updated = {r[0] for r in cursor.fetchall()}
            missing = [r for r in batch if r.values[0] not in updated]
            if missing:
                # A status row went missing (restored device, manual cleanup): make it, and write
                # those devices again (only those: the others' bad counts are already added).
                _create_status_rows([r.values[0] for r in missing])
                with connection.cursor() as cursor:
                    cursor.execute(sql, [threshold, *(list(column) for column in zip(*(r.values for r in missing)))])
            return []

        _, failed = isolate(group, execute)
        bad += failed
    return bad


def _create_status_rows(device_ids) -> None:
    from devices.models import Device

    existing = Device.objects.filter(id__in=device_ids).values_list("id", flat=True)
    DeviceStatus.objects.bulk_create([DeviceStatus(device_id=i) for i in existing], ignore_conflicts=True)


@dataclass
class _Sample:
    raw: bytes
    values: tuple


@lru_cache(maxsize=1)
def _sample_spec(vendor: str):
    from devices.models import HeartbeatSample

    fields = [HeartbeatSample._meta.get_field(c) for c in telemetry.SAMPLE_COLUMNS]
    # A field the device never sent is NULL, or the column's empty default where NULL is not allowed.
    defaults = [None if f.null else f.get_default() for f in fields]
    casts = ["uuid", "timestamptz", *(f.db_type(connection) for f in fields)]
    return defaults, casts, [_coerce(t) for t in casts[2:]]


def _sample_row(raw: bytes, spec) -> _Sample:
    defaults, _, coercers = spec
    sample = json.loads(raw)
    if not isinstance(sample, list) or len(sample) != 2 + len(telemetry.SAMPLE_COLUMNS):
        raise ValueError("not a history sample")
    device_id, at, *fields = sample
    fields = [d if v is None else coerce(v) for v, d, coerce in zip(fields, defaults, coercers)]
    return _Sample(raw, (uuid.UUID(device_id), _epoch(at), *fields))


def _write_samples(samples: list[_Sample], isolate=deadletters.isolate) -> list[tuple[_Sample, BaseException]]:
    _, casts, _ = _sample_spec(connection.vendor)
    columns = ("device_id", "at", *telemetry.SAMPLE_COLUMNS)
    sql = (f"INSERT INTO devices_heartbeatsample ({', '.join(columns)}) "
           f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in casts)}) ON CONFLICT DO NOTHING")

    def execute(batch):
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*(s.values for s in batch))])
        return []

    return isolate(samples, execute)[1]


def backlog() -> dict[str, int]:
    """What waits for the flush (the console's Operations page): one pipeline."""
    if not enabled():
        return {}
    client, _ = _client()
    pipe = client.pipeline(transaction=False)
    pipe.scard(_key("dirty"))
    pipe.llen(_key("hist"))
    pipe.hlen(_key("bad"))
    pipe.zcard(_key("claims"))
    dirty, samples, bad, claimed = pipe.execute()
    return {"dirty_devices": dirty, "history_samples": samples, "bad_envelope_counts": bad, "claims": claimed}
