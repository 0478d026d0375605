"""The heartbeat, the hot path (PROTOCOL.md): the token check, the status write (Redis
write-behind, one PostgreSQL statement, or the portable form for embedded SQLite), the 10 s
history sample, the FCM token, and a token's first use."""

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.db import connection, transaction
from django.utils import timezone

from devices import hooks, live, telemetry, tokens, writebehind
from devices.models import Device, DeviceStatus, HeartbeatSample
from devices.services.sweep import schedule_live_flush, schedule_status_broadcast
from mdm import metrics
from mdm.models import FleetSettings

HISTORY_EVERY_S = 10


@dataclass(frozen=True)
class _Written:
    device_id: str
    inventory_hash: str
    took_history: bool
    visible_change: bool  # came online, or battery or charging changed: the console shows it
    live_flush: bool | None = None  # write-behind: the Lua call marked a visible change; True = schedule the flush
    marker: bytes | None = None  # the commands marker, when the write read it (write-behind)
    policy: bytes | None = None  # the cached policy version, when the write read it (write-behind)
    keyset: bytes | None = None  # the keyset cached beside a clean marker the kids did not match, likewise


def record_heartbeat(*, token: str, data: dict) -> tuple[str, dict] | None:
    """Authenticate the device token, store one heartbeat and build its answer (PROTOCOL.md):
    (device id, answer), or None when the token is not valid. With Redis it is one Lua call
    (devices.writebehind: token check, state merge, 10 s history decision, dirty marks, command
    marker read) and PostgreSQL gets the batch a second later; without, the token check and one
    statement on PostgreSQL: the status UPDATE, the history INSERT when the device's last sample
    is 10 s old or more (decided in the same UPDATE from `last_history_at`), and the values the
    answer needs (RETURNING)."""
    now = timezone.now()
    values, ignored = telemetry.clean(data)
    drift = values["device_time"] - int(now.timestamp()) if "device_time" in values else None
    bad = values.get("bad_envelopes", 0)
    fleet = FleetSettings.current()
    marker = policy = keyset_raw = hooks.UNREAD
    if writebehind.enabled():
        written = _write_status_redis(token, values, now, drift, bad, fleet)
        if written is None:
            return None
        marker, policy, keyset_raw = written.marker, written.policy, written.keyset
    else:
        device_id = tokens.verify(token)
        if device_id is None:
            return None
        write = _write_status_postgres if connection.vendor == "postgresql" else _write_status_portable
        written = write(device_id, values, now, drift, bad)
        if written is None:  # the status row is missing (restored device, manual cleanup): make it
            DeviceStatus.objects.get_or_create(device_id=device_id)
            written = write(device_id, values, now, drift, bad)
    device_id = written.device_id
    if "fcm_token" in values:
        _store_fcm_token(device_id=device_id, fcm_token=values["fcm_token"])

    metrics.HEARTBEATS.labels("ok").inc()
    if not written.took_history:
        metrics.HEARTBEATS.labels("history_deduplicated").inc()
    if written.live_flush:
        schedule_live_flush()
    elif written.live_flush is None and (written.visible_change or live.page_open(device_id)):
        schedule_status_broadcast(device_ids=[device_id])

    kids = values.get("kids")
    answer = {
        "server_time": int(now.timestamp()),
        "heartbeat_interval_s": fleet.heartbeat_interval_s,
        **hooks.heartbeat_answer(device_id=device_id, kids=kids, marker=marker, keyset_raw=keyset_raw),
        "policy_version": hooks.policy_version(device_id=device_id, cached=policy),
        "inventory_requested": "apps_hash" in values and values["apps_hash"] != written.inventory_hash,
        "ignored_fields": ignored,
    }
    return device_id, answer


def _write_status_redis(token, values, now, drift, bad, fleet) -> _Written | None:
    parts = tokens.split(token)
    if parts is None:
        return None
    token_id, secret = parts
    state = {c: values[c] for c in telemetry.STATUS_COLUMNS if c in values}
    if drift is not None:
        state["clock_drift_s"] = max(min(drift, 2**31 - 1), -(2**31))

    def record():
        return writebehind.record(
            token_key=tokens.cache_key(token_id), digest=tokens.digest(secret), values=state, now=now,
            history_every_s=HISTORY_EVERY_S, offline_after_s=fleet.offline_threshold_s, bad=bad,
            marker_prefix=hooks.marker_prefix(), policy_prefix=hooks.policy_prefix(), live_keys=live.redis_keys(),
            live_pending_ttl_s=live.PENDING_TTL_S, page_prefix=live.PAGE_TOPIC_PREFIX,
            marker_expected=hooks.marker_expected(values.get("kids")),
        )

    recorded = record()
    if recorded.auth == "unknown":
        if tokens.verify(token) is None:
            return None
        recorded = record()  # the token's first use: verify() checked it (bcrypt) and cached it
        if recorded.auth == "unknown":
            # Valid, yet its cache entry vanished in between (eviction): a 401 would make the
            # device re-enroll, so answer "busy" and let it retry.
            raise redis.RedisError("verified token entry missing from Redis")
    if recorded.auth != "ok":
        return None
    inventory_hash = recorded.inventory_hash
    if inventory_hash is None:  # first heartbeat since Redis lost it: read once, remember
        inventory_hash = DeviceStatus.objects.filter(device_id=recorded.device_id).values_list("inventory_hash", flat=True).first() or ""
        writebehind.remember_inventory_hash(recorded.device_id, inventory_hash)
    # A visible change is already marked in Redis by the same call; live_flush says whether the
    # flush still has to be scheduled.
    return _Written(recorded.device_id, inventory_hash, recorded.took_history, visible_change=False,
                    live_flush=recorded.live_flush, marker=recorded.marker, policy=recorded.policy,
                    keyset=recorded.keyset)


def _status_assignments(values: dict, drift: int | None, bad: int) -> tuple[list[str], dict]:
    sets, params = [], {}
    for column in telemetry.STATUS_COLUMNS:
        if column not in values:
            continue
        value = values[column]
        cast = ""
        if column in telemetry.JSON_COLUMNS:
            value, cast = json.dumps(value), "::jsonb"
        elif column == "ip_address":
            cast = "::inet"
        elif column == "security_patch":
            cast = "::date"
        sets.append(f"{column} = %(v_{column})s{cast}")
        params[f"v_{column}"] = value
    if drift is not None:
        sets.append("clock_drift_s = %(drift)s")
        params["drift"] = max(min(drift, 2**31 - 1), -(2**31))
    if bad:
        sets.append("bad_envelopes_total = s.bad_envelopes_total + %(bad)s")
        sets.append("last_bad_envelope_at = %(now)s")
        params["bad"] = bad
    return sets, params


def _write_status_postgres(device_id, values, now, drift, bad) -> _Written | None:
    sets, params = _status_assignments(values, drift, bad)
    sample_cols = ", ".join(telemetry.SAMPLE_COLUMNS)
    # `o` is the row as it was before this statement (for "came online" and "battery changed");
    # the CASE on `s` is re-evaluated on the latest row version under concurrency, so two
    # heartbeats racing cannot both take the 10 s history slot. ON CONFLICT covers two
    # heartbeats of one device in the same microsecond.
    sql = f"""
        WITH u AS (
            UPDATE devices_devicestatus AS s
            SET last_seen = %(now)s, online = TRUE{"".join(", " + a for a in sets)},
                last_history_at = CASE
                    WHEN s.last_history_at IS NULL OR s.last_history_at <= %(cutoff)s THEN %(now)s
                    ELSE s.last_history_at END
            FROM devices_devicestatus AS o
            WHERE s.device_id = %(id)s AND o.device_id = s.device_id
            RETURNING o.online AS was_online, o.battery_pct AS old_battery, o.charging AS old_charging,
                      s.inventory_hash,
                      (s.last_history_at = %(now)s AND o.last_history_at IS DISTINCT FROM %(now)s) AS took,
                      {", ".join("s." + c for c in telemetry.SAMPLE_COLUMNS)}
        ), ins AS (
            INSERT INTO devices_heartbeatsample (device_id, at, {sample_cols})
            SELECT %(id)s, %(now)s, {sample_cols} FROM u WHERE took
            ON CONFLICT DO NOTHING
        )
        SELECT was_online, old_battery, old_charging, battery_pct, charging, inventory_hash, took FROM u
    """
    params.update(id=uuid.UUID(device_id), now=now, cutoff=now - timedelta(seconds=HISTORY_EVERY_S))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    was_online, old_battery, old_charging, battery, charging, inventory_hash, took = row
    return _Written(device_id, inventory_hash, took,
                    visible_change=not was_online or battery != old_battery or charging != old_charging)


def _write_status_portable(device_id, values, now, drift, bad) -> _Written | None:
    """The same effect without PostgreSQL's UPDATE ... FROM/RETURNING (embedded SQLite)."""
    with transaction.atomic():
        status = DeviceStatus.objects.select_for_update().filter(device_id=device_id).first()
        if status is None:
            return None
        was_online, old_battery, old_charging = status.online, status.battery_pct, status.charging
        fields = ["last_seen", "online"]
        status.last_seen, status.online = now, True
        for column in telemetry.STATUS_COLUMNS:
            if column in values:
                setattr(status, column, values[column])
                fields.append(column)
        if drift is not None:
            status.clock_drift_s = drift
            fields.append("clock_drift_s")
        if bad:
            status.bad_envelopes_total += bad
            status.last_bad_envelope_at = now
            fields += ["bad_envelopes_total", "last_bad_envelope_at"]
        took = status.last_history_at is None or status.last_history_at <= now - timedelta(seconds=HISTORY_EVERY_S)
        if took:
            status.last_history_at = now
            fields.append("last_history_at")
        status.save(update_fields=fields)
        if took:
            HeartbeatSample.objects.create(
                device_id=device_id, at=now, **{c: getattr(status, c) for c in telemetry.SAMPLE_COLUMNS}
            )
    visible = not was_online or status.battery_pct != old_battery or status.charging != old_charging
    return _Written(str(device_id), status.inventory_hash, took, visible_change=visible)


def _store_fcm_token(*, device_id: str, fcm_token: str) -> None:
    # Conditional: no write when unchanged. A token now held by this device is taken from any
    # other device that still had it (PROTOCOL.md: a token claimed by another device is removed).
    changed = Device.objects.filter(id=device_id).exclude(fcm_token=fcm_token).update(fcm_token=fcm_token)
    if changed and fcm_token:
        Device.objects.filter(fcm_token=fcm_token).exclude(id=device_id).update(fcm_token="")


def mark_token_used(*, token_id: str) -> bool:
    """The first authentication of a token (enroll retry safety ends there). Called from the
    token verifier only when it runs bcrypt, i.e. not on every heartbeat."""
    return bool(
        Device.objects.filter(token_id=token_id, token_used_at__isnull=True).update(token_used_at=timezone.now())
    )
