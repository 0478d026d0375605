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

Keys (single Redis; they are not hash-tagged for Redis Cluster):
  {p}hb:s:<device id>    latest state, JSON (every heartbeat field seen, last_seen, ...)
  {p}hb:dirty            set of device ids whose state is not yet in PostgreSQL
  {p}hb:hist             list of history samples to insert
  {p}hb:bad              hash device id -> bad_envelopes not yet added
  {p}hb:inv:<device id>  the stored inventory's hash (set by replace_inventory)
The heartbeat's call also reads the verified-token entry (devices.tokens.cache_key) and the
command marker (commands.markers), and marks console-visible changes in devices.live's keys.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction

from devices import telemetry
from mdm import redis_client
from devices.models import DeviceStatus

logger = logging.getLogger(__name__)

STATE_TTL_S = 7 * 86400
FLUSH_BATCH = 5000
INV_TTL_S = 7 * 86400

# One heartbeat, one round trip: authenticate the token against the verified-token cache
# (devices.tokens), merge the fields into the device's latest state, decide the 10 s history
# sample, mark the device dirty for the flusher and, on a change a console shows (came online,
# battery, charging), for the live-update flush too; read back what the answer needs.
# The device's own keys are built here from its id (read from the token entry): fine on one
# Redis, which is what this module supports (see the module docstring).
# KEYS: 1 token entry, 2 dirty set, 3 history list, 4 bad hash, 5 live dirty set, 6 live pending
# ARGV: 1 secret digest, 2 values (JSON), 3 now (us), 4 history every (us), 5 offline after (us),
#       6 state TTL (s), 7 bad envelopes, 8 sample columns, 9 state key prefix,
#       10 inventory key prefix, 11 command marker prefix, 12 live pending TTL (s)
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
if (not was_online) or old_battery ~= state.battery_pct or old_charging ~= state.charging then
  redis.call('SADD', KEYS[5], device_id)
  live_flush = redis.call('SET', KEYS[6], 1, 'NX', 'EX', tonumber(ARGV[12])) ~= false
end
return cjson.encode({
  auth = 'ok', device_id = device_id, took = took, live_flush = live_flush,
  inventory_hash = redis.call('GET', ARGV[10] .. device_id), marker = redis.call('GET', ARGV[11] .. device_id)
})
"""

# Take up to N items atomically (LRANGE + LTRIM; HGETALL + DEL).
_TAKE_LIST = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('LTRIM', KEYS[1], #items, -1)
return items
"""
_TAKE_HASH = """
local items = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return items
"""


def enabled() -> bool:
    """Redis configured, PostgreSQL behind (the flush's statements are PostgreSQL's), not switched off."""
    return bool(settings.REDIS_URL) and connection.vendor == "postgresql" and getattr(settings, "HEARTBEAT_WRITE_BEHIND", True)


@lru_cache(maxsize=2)
def _scripts_for(client):
    return client.register_script(_RECORD), client.register_script(_TAKE_LIST), client.register_script(_TAKE_HASH)


def _client():
    client = redis_client.client()
    return (client, *_scripts_for(client))


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
    live_flush: bool = False  # a console-visible change, and no live-update flush scheduled yet
    inventory_hash: str | None = None  # None: not cached in Redis yet
    marker: bytes | None = None  # the command marker (commands.markers), read in the same call


def record(*, token_key: str, digest: str, values: dict, now: datetime, history_every_s: int,
           offline_after_s: int, bad: int, marker_prefix: str, live_keys: tuple[str, str],
           live_pending_ttl_s: int) -> Recorded:
    """One heartbeat in one Lua call (see _RECORD). `token_key`/`digest`: the device token's
    entry in the verified-token cache and the SHA-256 of the presented secret."""
    client, script, _, _ = _client()
    raw = script(
        keys=[token_key, _key("dirty"), _key("hist"), _key("bad"), *live_keys],
        args=[digest, json.dumps(values), str(_micros(now)), history_every_s * 1_000_000, offline_after_s * 1_000_000,
              STATE_TTL_S, bad, ",".join(telemetry.SAMPLE_COLUMNS), state_key(""), inventory_key(""), marker_prefix,
              live_pending_ttl_s],
    )
    data = json.loads(raw)
    if data["auth"] != "ok":
        return Recorded(auth=data["auth"])
    inventory = data.get("inventory_hash")
    marker = data.get("marker")
    return Recorded(
        auth="ok",
        device_id=data["device_id"],
        took_history=data["took"] is True,
        live_flush=data["live_flush"] is True,
        inventory_hash=inventory if isinstance(inventory, str) else None,  # cjson: a missing key is false
        marker=marker.encode() if isinstance(marker, str) else None,
    )


def remember_inventory_hash(device_id, value: str) -> None:
    client, *_ = _client()
    client.set(inventory_key(device_id), value or "", ex=INV_TTL_S)


def forget_states(device_ids) -> None:
    if device_ids:
        client, *_ = _client()
        client.delete(*[state_key(i) for i in device_ids])


def forget_inventory_hash(device_id) -> None:
    client, *_ = _client()
    client.delete(inventory_key(device_id))


# --- flushing ----------------------------------------------------------------------------------

def _column_types() -> dict[str, str]:
    types = {}
    for column in (*telemetry.STATUS_COLUMNS, "clock_drift_s"):
        field = DeviceStatus._meta.get_field(column)
        types[column] = field.db_type(connection)
        if column == "kids":
            types[column] = "jsonb"
    return types


_INTEGER_TYPES = ("smallint", "integer", "bigint")
_FLOAT_TYPES = ("double precision", "real")


def _coerce(db_type: str):
    """What a column's values must be in Python before they go into one typed array: JSON through
    Lua's cjson gives back 31.0 as 31 and big integers as floats, and psycopg refuses an array
    mixing int and float."""
    if db_type in _FLOAT_TYPES:
        return lambda v: None if v is None else float(v)
    if db_type in _INTEGER_TYPES:
        return lambda v: None if v is None else int(v)
    return lambda v: v


def _micros(moment: datetime) -> int:
    # Integer microseconds: exact in Lua's doubles (< 2^53), so "10 s later" compares exactly.
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _epoch(micros) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flush(limit: int = FLUSH_BATCH) -> int:
    """Writes dirty device states and pending history samples to PostgreSQL. Returns the number
    of states written. Safe to run concurrently (each item is taken by exactly one flusher)."""
    if not enabled():
        return 0
    client, _, take_list, take_hash = _client()
    ids = [i.decode() for i in client.spop(_key("dirty"), limit) or []]
    written = 0
    if ids:
        raw_states = client.mget([state_key(i) for i in ids])
        bad_raw = take_hash(keys=[_key("bad")])
        bad = {bad_raw[i].decode(): int(bad_raw[i + 1]) for i in range(0, len(bad_raw), 2)}
        states = {i: json.loads(s) for i, s in zip(ids, raw_states) if s is not None}
        try:
            written = _write_states(states, bad)
        except Exception:
            # Nothing taken is lost: the devices stay dirty and their bad counts wait for the next
            # flush (their latest state is still in Redis).
            client.sadd(_key("dirty"), *ids)
            for device_id, n in bad.items():
                client.hincrby(_key("bad"), device_id, n)
            raise
        leftover = set(bad) - set(states)
        if leftover:  # a bad count whose state expired: put it back for the next flush
            client.hset(_key("bad"), mapping={k: bad[k] for k in leftover})
    raw_samples = take_list(keys=[_key("hist")], args=[limit])
    if raw_samples:
        try:
            _write_samples([json.loads(s) for s in raw_samples])
        except Exception:
            client.rpush(_key("hist"), *raw_samples)  # back in the queue for the next flush
            raise
    return written


def _write_states(states: dict[str, dict], bad: dict[str, int]) -> int:
    from mdm.models import FleetSettings

    types = _column_types()
    threshold = FleetSettings.current().offline_threshold_s
    # Group by the set of fields present: a field a device never sent keeps its stored value.
    groups: dict[tuple, list] = {}
    for device_id, state in states.items():
        present = tuple(c for c in types if c in state)
        groups.setdefault(present, []).append(device_id)
    with transaction.atomic():
        for present, device_ids in groups.items():
            columns = ["device_id", "last_seen", "last_history_at", "bad", "bad_at", *present]
            casts = ["uuid", "timestamptz", "timestamptz", "integer", "timestamptz", *(types[c] for c in present)]
            # One array per column, unnested: the statement text is the same for 10 rows or 5,000,
            # which spares psycopg composing (and PostgreSQL parsing) thousands of placeholders.
            arrays: list[list] = [[] for _ in columns]
            for device_id in device_ids:
                state = states[device_id]
                values = [
                    uuid.UUID(device_id),
                    _epoch(state["last_seen"]),
                    _epoch(state["last_history_at"]) if state.get("last_history_at") else None,
                    bad.get(device_id, 0),
                    _epoch(state["last_bad_envelope_at"]) if state.get("last_bad_envelope_at") else None,
                    *(json.dumps(state[c]) if c == "kids" else state[c] for c in present),
                ]
                for array, value in zip(arrays, values):
                    array.append(value)
            params = [[coerce(v) for v in array] for coerce, array in zip(map(_coerce, casts), arrays)]
            source = "unnest(" + ", ".join(f"%s::{t}[]" for t in casts) + ")"
            # Two flushers can hold states of one device taken a moment apart; the older one must
            # not overwrite the newer (SET sees the row as it was before this statement).
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
            with connection.cursor() as cursor:
                cursor.execute(sql, [threshold, *params])
                updated = {str(r[0]) for r in cursor.fetchall()}
            missing = set(device_ids) - updated
            if missing:
                # A status row went missing (restored device, manual cleanup): make it, and write
                # those devices again (only those: the others' bad counts are already added).
                _create_status_rows(missing)
                keep = [i for i, device_id in enumerate(device_ids) if device_id in missing]
                with connection.cursor() as cursor:
                    cursor.execute(sql, [threshold, *([array[i] for i in keep] for array in params)])
    return len(states)


def _create_status_rows(device_ids) -> None:
    from devices.models import Device

    existing = Device.objects.filter(id__in=device_ids).values_list("id", flat=True)
    DeviceStatus.objects.bulk_create([DeviceStatus(device_id=i) for i in existing], ignore_conflicts=True)


def _write_samples(samples: list[list]) -> None:
    from devices.models import HeartbeatSample

    columns = ("device_id", "at", *telemetry.SAMPLE_COLUMNS)
    # A field the device never sent is NULL, or the column's empty default where NULL is not allowed.
    defaults = [None if HeartbeatSample._meta.get_field(c).null else HeartbeatSample._meta.get_field(c).get_default()
                for c in telemetry.SAMPLE_COLUMNS]
    casts = ["uuid", "timestamptz", *(HeartbeatSample._meta.get_field(c).db_type(connection) for c in telemetry.SAMPLE_COLUMNS)]
    arrays: list[list] = [[] for _ in columns]
    for sample in samples:
        device_id, at, *fields = sample
        fields = [d if v is None else v for v, d in zip(fields, defaults)]
        for array, value in zip(arrays, (uuid.UUID(device_id), _epoch(at), *fields)):
            array.append(value)
    arrays = [[coerce(v) for v in array] for coerce, array in zip(map(_coerce, casts), arrays)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO devices_heartbeatsample ({', '.join(columns)}) "
            f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in casts)}) ON CONFLICT DO NOTHING",
            arrays,
        )
