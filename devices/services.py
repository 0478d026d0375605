"""State changes of the devices app (docs/ARCHITECTURE.md: the only place that changes state). What
the apps above must do with a device (its commands, its deletion) goes through devices.hooks."""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from django.db import connection, transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from devices import fleet_stats, hooks, live, telemetry, tokens, writebehind
from devices.models import Device, DeviceGroup, DeviceStatus, HeartbeatSample, InstalledApp, Tag
from mdm import audit, metrics, realtime
from mdm.models import FleetSettings

logger = logging.getLogger(__name__)

HISTORY_EVERY_S = 10
MAX_INVENTORY_APPS = 5000
PURGE_BATCH = 5000


# --- Heartbeat (the hot path) ----------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    device_id: str
    inventory_hash: str
    took_history: bool
    visible_change: bool  # came online, or battery or charging changed: the console shows it
    live_flush: bool | None = None  # write-behind: the Lua call marked a visible change; True = schedule the flush
    marker: bytes | None = None  # the commands marker, when the write read it (write-behind)
    policy: bytes | None = None  # the cached policy version, when the write read it (write-behind)


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
    marker = policy = hooks.UNREAD
    if writebehind.enabled():
        written = _write_status_redis(token, values, now, drift, bad, fleet)
        if written is None:
            return None
        marker, policy = written.marker, written.policy
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
        _schedule_live_flush()
    elif written.live_flush is None and (written.visible_change or live.page_open(device_id)):
        schedule_status_broadcast(device_ids=[device_id])

    kids = values.get("kids")
    answer = {
        "server_time": int(now.timestamp()),
        "heartbeat_interval_s": fleet.heartbeat_interval_s,
        **hooks.heartbeat_answer(device_id=device_id, kids=kids, marker=marker),
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
                    live_flush=recorded.live_flush, marker=recorded.marker, policy=recorded.policy)


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


# --- Inventory -------------------------------------------------------------------------------


def apps_hash(apps: list[dict]) -> str:
    """PROTOCOL.md: SHA-256 of the lines `package\\tversion_code\\tenabled\\n`, sorted by bytes."""
    lines = sorted(
        f"{a['package']}\t{a.get('version_code') if a.get('version_code') is not None else ''}\t"
        f"{'true' if a.get('enabled', True) else 'false'}\n".encode()
        for a in apps
    )
    return hashlib.sha256(b"".join(lines)).hexdigest()


@transaction.atomic
def replace_inventory(*, device_id: str, apps: list[dict]) -> int:
    """Replace the device's app list (already validated). Returns the number of apps stored."""
    now = timezone.now()
    InstalledApp.objects.filter(device_id=device_id).delete()
    InstalledApp.objects.bulk_create(
        [
            InstalledApp(
                device_id=device_id,
                package=a["package"],
                version_name=a.get("version_name") or "",
                version_code=a.get("version_code"),
                system=a.get("system", False),
                enabled=a.get("enabled", True),
            )
            for a in apps
        ],
        batch_size=1000,
    )
    digest = apps_hash(apps)
    updated = DeviceStatus.objects.filter(device_id=device_id).update(inventory_hash=digest, inventory_at=now)
    if not updated:
        DeviceStatus.objects.create(device_id=device_id, inventory_hash=digest, inventory_at=now)
    if writebehind.enabled():
        # Forget the old hash now (a heartbeat meanwhile reads the database), remember the new one
        # once it is committed.
        writebehind.forget_inventory_hash(device_id)
        transaction.on_commit(lambda: writebehind.remember_inventory_hash(device_id, digest))
    return len(apps)


# --- Console / API changes -------------------------------------------------------------------


def _tags_from_names(names) -> list[Tag]:
    slugs = {slugify(n)[:64] for n in names if slugify(n)}
    existing = {t.name: t for t in Tag.objects.filter(name__in=slugs)}
    for slug in slugs - existing.keys():
        existing[slug], _ = Tag.objects.get_or_create(name=slug)
    return sorted(existing.values(), key=lambda t: t.name)


_UNSET = object()


@transaction.atomic
def update_device(*, actor, device: Device, alias=_UNSET, group=_UNSET, tag_names=_UNSET, ip=None) -> Device:
    device = Device.objects.select_for_update().get(pk=device.pk)
    changed, fields = {}, []
    if alias is not _UNSET and alias != device.alias:
        changed["alias"] = {"from": device.alias, "to": alias}
        device.alias = alias
        fields.append("alias")
    if group is not _UNSET and group != device.group:
        changed["group"] = {"from": str(device.group or ""), "to": str(group or "")}
        device.group = group
        fields.append("group")
    if fields:
        device.save(update_fields=fields)
    if "group" in changed:
        hooks.devices_regrouped(device_ids=[device.pk])
    if tag_names is not _UNSET:
        tags = _tags_from_names(tag_names)
        before = sorted(device.tags.values_list("name", flat=True))
        after = [t.name for t in tags]
        if before != after:
            device.tags.set(tags)
            changed["tags"] = {"from": before, "to": after}
    if changed:
        audit.record(actor=actor, action="device.update", target=device, data=changed, ip=ip)
    return device


@transaction.atomic
def move_devices(*, actor, device_ids, group: DeviceGroup | None, ip=None) -> int:
    """Move the selected active devices into `group` (None: out of any group). One UPDATE, one
    audit row per device that moved (`device.update`, as an edit of one device writes), and the
    policy channel told once. Returns how many moved."""
    selected = Device.objects.active().filter(id__in=list(device_ids))
    selected = selected.exclude(group=group) if group else selected.filter(group__isnull=False)
    # Locked in id order (as issuing a command locks them), so two bulk changes cannot deadlock.
    moving = dict(selected.select_for_update(of=("self",)).order_by("id").values_list("id", "group__name"))
    if not moving:
        return 0
    Device.objects.filter(id__in=list(moving)).update(group=group)
    hooks.devices_regrouped(device_ids=list(moving))
    to = group.name if group else ""
    audit.record_many(actor=actor, action="device.update", targets=[Device(pk=i) for i in moving], ip=ip,
                      data_for=lambda d: {"group": {"from": moving[d.pk] or "", "to": to}, "bulk": True})
    return len(moving)


@transaction.atomic
def tag_devices(*, actor, device_ids, add=(), remove=(), ip=None) -> int:
    """Add the tags named in `add` (made when new) to the selected active devices and take those
    named in `remove` off them, in a few set-wise statements. One audit row per device that
    changed. Returns how many changed."""
    ids = list(Device.objects.active().filter(id__in=list(device_ids)).values_list("id", flat=True))
    through = Device.tags.through
    added, removed = {}, {}
    if ids and add:
        tags = _tags_from_names(add)
        have = set(through.objects.filter(device_id__in=ids, tag__in=tags).values_list("device_id", "tag_id"))
        rows = [through(device_id=i, tag_id=t.pk) for i in ids for t in tags if (i, t.pk) not in have]
        through.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
        names = {t.pk: t.name for t in tags}
        for row in rows:
            added.setdefault(row.device_id, []).append(names[row.tag_id])
    if ids and remove:
        slugs = {slugify(n)[:64] for n in remove}
        gone = through.objects.filter(device_id__in=ids, tag__name__in=slugs)
        for device_id, name in gone.values_list("device_id", "tag__name"):
            removed.setdefault(device_id, []).append(name)
        gone.delete()
    changed = added.keys() | removed.keys()
    if changed:
        def data_for(device):
            tags = {"added": sorted(added.get(device.pk, [])), "removed": sorted(removed.get(device.pk, []))}
            return {"tags": {k: v for k, v in tags.items() if v}, "bulk": True}

        audit.record_many(actor=actor, action="device.update", targets=[Device(pk=i) for i in changed], ip=ip, data_for=data_for)
    return len(changed)


@transaction.atomic
def delete_devices(*, actor, device_ids, ip=None) -> list[str]:
    """Delete at once for the admin: gone from lists, token dead on its next request, hardware id
    retired. History, inventory and deliveries are purged later, in batches, by a worker."""
    devices = list(Device.objects.active().select_for_update().filter(id__in=list(device_ids)))
    if not devices:
        return []
    now = timezone.now()
    ids = [d.pk for d in devices]
    for device in devices:
        tokens.forget_on_commit(device.token_id)
        hooks.device_deleted(device_id=str(device.pk))
        audit.record(
            actor=actor, action="device.delete", target=device, data={"hardware_id": device.hardware_id}, ip=ip
        )
    Device.objects.filter(id__in=ids).update(
        deleted_at=now, purged_at=None, token_id=None, token_hash="", token_used_at=None, fcm_token=""
    )
    DeviceStatus.objects.filter(device_id__in=ids).update(online=False)

    def enqueue():
        from devices.tasks import purge_device

        for device_id in ids:
            purge_device.delay(str(device_id))

    transaction.on_commit(enqueue)
    transaction.on_commit(lambda: schedule_status_broadcast(device_ids=ids))
    return [str(i) for i in ids]


@transaction.atomic
def restore_device(*, actor, device: Device, ip=None) -> Device:
    """Un-retire a deleted device's hardware id: it may enroll again (its old token stays dead)."""
    updated = Device.objects.filter(pk=device.pk, deleted_at__isnull=False).update(deleted_at=None)
    if updated:
        audit.record(actor=actor, action="device.restore", target=device, ip=ip)
    device.refresh_from_db()
    return device


@transaction.atomic
def create_group(*, actor, name: str, description: str = "", ip=None) -> DeviceGroup:
    group = DeviceGroup.objects.create(name=name.strip(), description=description)
    audit.record(actor=actor, action="group.create", target=group, data={"name": group.name}, ip=ip)
    return group


@transaction.atomic
def update_group(*, actor, group: DeviceGroup, name: str, description: str = "", ip=None) -> DeviceGroup:
    changed = {"name": {"from": group.name, "to": name}} if group.name != name else {}
    group.name, group.description = name.strip(), description
    group.save(update_fields=["name", "description"])
    audit.record(actor=actor, action="group.update", target=group, data=changed, ip=ip)
    return group


@transaction.atomic
def delete_group(*, actor, group: DeviceGroup, ip=None) -> None:
    audit.record(actor=actor, action="group.delete", target=group, data={"name": group.name}, ip=ip)
    members = list(Device.objects.filter(group=group).values_list("pk", flat=True))
    group.delete()
    if members:  # they have no group now: the policy channel re-resolves theirs
        hooks.devices_regrouped(device_ids=members)


@transaction.atomic
def create_tag(*, actor, name: str, ip=None) -> Tag:
    tag, created = Tag.objects.get_or_create(name=slugify(name)[:64])
    if created:
        audit.record(actor=actor, action="tag.create", target=("tag", tag.name), ip=ip)
    return tag


@transaction.atomic
def delete_tag(*, actor, tag: Tag, ip=None) -> None:
    audit.record(actor=actor, action="tag.delete", target=("tag", tag.name), ip=ip)
    tag.delete()


# --- Background work -------------------------------------------------------------------------


def sweep_offline(*, now: datetime | None = None) -> list[str]:
    """Mark devices offline once they are past the fleet's threshold without a heartbeat.
    The UPDATE re-checks `last_seen`, so a heartbeat landing meanwhile keeps its device online."""
    flush_heartbeats()  # act on every heartbeat received so far, not on the last flush's view
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=FleetSettings.current().offline_threshold_s)
    stale = DeviceStatus.objects.filter(online=True).filter(Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True))
    ids = list(stale.values_list("device_id", flat=True)[:10000])
    if ids:
        DeviceStatus.objects.filter(device_id__in=ids, online=True).filter(
            Q(last_seen__lt=cutoff) | Q(last_seen__isnull=True)
        ).update(online=False)
        if writebehind.enabled():
            # Their buffered state is in the database now; dropping it makes the next heartbeat
            # of each one read as "came back online" (and take a history sample at once).
            writebehind.forget_states(ids)
        schedule_status_broadcast(device_ids=ids)
    fleet = Device.objects.active().aggregate(total=Count("pk"), online=Count("pk", filter=Q(status__online=True)))
    metrics.DEVICES_ONLINE.set(fleet["online"])
    fleet_stats.record_sample(now=now, total=fleet["total"], online=fleet["online"])  # the dashboard's chart
    return [str(i) for i in ids]


def flush_heartbeats() -> int:
    """Write the heartbeats buffered in Redis (devices.writebehind) to PostgreSQL, all of them.
    Returns the device states written; what PostgreSQL refused is in mdm.deadletters."""
    total = 0
    while True:
        flushed = writebehind.flush_batch()
        total += flushed.written
        if not flushed.again:
            return total


def schedule_status_broadcast(*, device_ids) -> None:
    """Coalesce: remember the devices, and make sure one flush runs within about a second."""
    try:
        if live.mark_dirty(device_ids):
            _schedule_live_flush()
    except Exception:  # a lost live update must never fail a heartbeat
        logger.exception("could not schedule the live status flush")


def _schedule_live_flush() -> None:
    from devices.tasks import flush_live_updates

    try:
        flush_live_updates.apply_async(countdown=live.FLUSH_DELAY_S)
    except Exception:  # a lost live update must never fail a heartbeat
        logger.exception("could not schedule the live status flush")


def broadcast_status_changes() -> int:
    """Send the console the current cells of every device marked dirty since the last flush: one
    message on `devices` (list cells + fleet summary), the summary alone on `dashboard` (which has
    no device cells to swap them into) and one per device page."""
    from devices.selectors import fleet_summary_for_all

    flush_heartbeats()
    ids = live.take_dirty()
    if not ids:
        return 0
    devices = list(Device.objects.filter(id__in=ids, deleted_at__isnull=True).select_related("status"))
    open_pages = realtime.watched(["devices", "dashboard", *(f"device.{device.pk}" for device in devices)])
    fleet = FleetSettings.current()
    messages = []
    summary = fleet_summary_for_all() if {"devices", "dashboard"} & open_pages else None
    if "devices" in open_pages:
        messages.append(("devices", render_to_string("devices/_live_updates.html", {"devices": devices, "summary": summary})))
    if "dashboard" in open_pages:
        messages.append(("dashboard", render_to_string("_fleet_summary.html", {"summary": summary})))
    for device in devices:
        if f"device.{device.pk}" not in open_pages:
            continue  # nobody has this device's page open: nothing to render
        messages.append((
            f"device.{device.pk}",
            render_to_string(
                "devices/_device_status.html", {"device": device, "status": device.status, "oob": True, "fleet": fleet}
            ),
        ))
    realtime.broadcast_many(messages)
    return len(devices)


def purge_device_data(*, device_id: str, batch_size: int = PURGE_BATCH) -> int:
    """One batch of a deleted device's purge: history first, then inventory, then what the apps
    above keep for it (devices.hooks.device_purge: deliveries and keys).
    Returns the rows deleted (0 when nothing is left, and then the device is marked purged).
    Short statements on the deleted device's own rows only: the heartbeat path never waits."""
    if not Device.objects.filter(id=device_id, deleted_at__isnull=False).exists():
        return 0  # restored meanwhile, or gone
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """DELETE FROM devices_heartbeatsample WHERE (device_id, at) IN (
                       SELECT device_id, at FROM devices_heartbeatsample WHERE device_id = %s LIMIT %s)""",
                [uuid.UUID(str(device_id)), batch_size],
            )
            deleted = cursor.rowcount
    else:
        ats = list(HeartbeatSample.objects.filter(device_id=device_id).values_list("at", flat=True)[:batch_size])
        deleted = HeartbeatSample.objects.filter(device_id=device_id, at__in=ats).delete()[0] if ats else 0
    if deleted:
        return deleted
    app_ids = list(InstalledApp.objects.filter(device_id=device_id).values_list("id", flat=True)[:batch_size])
    if app_ids:
        return InstalledApp.objects.filter(id__in=app_ids).delete()[0]
    deleted = hooks.device_purge(device_id=str(device_id), batch_size=batch_size)
    if deleted:
        return deleted
    Device.objects.filter(id=device_id, deleted_at__isnull=False, purged_at__isnull=True).update(
        purged_at=timezone.now()
    )
    return 0
