"""Command signing keys (PROTOCOL.md, "Keys"): each device's current key, the next one handed out
a day before it signs, and the previous one kept until the device shows it holds the current.
Every key change drops the device's command marker (commands.markers) so its next heartbeat
hands over the new set."""

import base64
import secrets
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from commands import crypto, markers
from commands.models import DeviceKey
from commands.services.lifecycle import cancel_device_deliveries
from devices.models import Device
from mdm import audit, sql

KEY_LEAD = timedelta(days=1)


def _new_key(device_id, number: int, state: str, now: datetime, activates_at=None) -> DeviceKey:
    return DeviceKey(
        device_id=device_id,
        kid=f"k{number}",
        number=number,
        key_encrypted=crypto.encrypt_bytes(secrets.token_bytes(32)),
        state=state,
        created_at=now,
        activates_at=activates_at,
    )


def _retire(qs, now) -> int:
    return qs.update(state=DeviceKey.State.RETIRED, key_encrypted="", retired_at=now)


def keyset(keys) -> list[dict]:
    """`command_keys` for an answer: the device's live keys, the signing one first."""
    order = {DeviceKey.State.CURRENT: 0, DeviceKey.State.NEXT: 1, DeviceKey.State.PREVIOUS: 2}
    ordered = sorted((k for k in keys if k.state in order), key=lambda k: order[k.state])
    return [{"kid": k.kid, "key": base64.b64encode(k.key).decode()} for k in ordered]


_LIVE_KEY_STATES = (DeviceKey.State.CURRENT, DeviceKey.State.NEXT, DeviceKey.State.PREVIOUS)
_KEY_COLUMNS = ("id", "device_id", "kid", "number", "key_encrypted", "state", "created_at", "activates_at", "retired_at")
_KEYS = sql.Reader(*((name, DeviceKey, name) for name in _KEY_COLUMNS))


def live_keys(device_id) -> list[DeviceKey]:
    """One raw SELECT: every heartbeat of a device with work reads its keys (mdm.sql)."""
    rows = _KEYS.rows(
        f"SELECT {', '.join(_KEY_COLUMNS)} FROM {sql.table(DeviceKey)} "
        f"WHERE device_id = %s AND state IN ({sql.placeholders(len(_LIVE_KEY_STATES))})",
        [sql.param(DeviceKey, "device", device_id), *_LIVE_KEY_STATES],
    )
    return [DeviceKey.from_db(connection.alias, _KEY_COLUMNS, [row[name] for name in _KEY_COLUMNS]) for row in rows]


@transaction.atomic
def ensure_device_keys(*, device_id, now: datetime | None = None) -> list[DeviceKey]:
    """The device's live keys, making a current one if it has none (a device enrolled before
    keys existed, or one whose next key was never promoted)."""
    now = now or timezone.now()
    keys = live_keys(device_id)
    if any(k.state == DeviceKey.State.CURRENT for k in keys):
        return keys
    Device.objects.select_for_update().filter(pk=device_id).values_list("pk").first()
    keys = live_keys(device_id)
    if any(k.state == DeviceKey.State.CURRENT for k in keys):
        return keys
    nxt = [k for k in keys if k.state == DeviceKey.State.NEXT]
    if nxt:
        DeviceKey.objects.filter(pk=nxt[0].pk).update(state=DeviceKey.State.CURRENT)
    else:
        number = (DeviceKey.objects.filter(device_id=device_id).aggregate(m=Max("number"))["m"] or 0) + 1
        _new_key(device_id, number, DeviceKey.State.CURRENT, now).save()
    markers.dirty_on_commit([device_id])
    return live_keys(device_id)


def create_enrollment_keys(*, device, reenrolled: bool, now: datetime | None = None) -> list[dict]:
    """A fresh current key (all earlier ones retired); on re-enrollment also cancels every
    non-final delivery (reason `reenrolled`): the device lost what it held."""
    now = now or timezone.now()
    with transaction.atomic():
        _retire(DeviceKey.objects.filter(device_id=device.pk).exclude(state=DeviceKey.State.RETIRED), now)
        number = (DeviceKey.objects.filter(device_id=device.pk).aggregate(m=Max("number"))["m"] or 0) + 1
        key = _new_key(device.pk, number, DeviceKey.State.CURRENT, now)
        key.save()
        if reenrolled:
            cancel_device_deliveries(device_id=device.pk, reason="reenrolled", now=now)
        keys = keyset([key])
        # Its first heartbeat: one Redis read; its first policy fetch signs with the cached key.
        markers.clean_on_commit(device.pk, markers.kids_key([key.kid]), keys)
    return keys


@transaction.atomic
def start_key_rotation(*, actor=None, lead: timedelta = KEY_LEAD, device_ids=None, now: datetime | None = None) -> int:
    """Hand every (or the given) device a `next` key that starts signing after `lead` (at least
    a day, PROTOCOL.md). A device still holding a `previous` key loses it: a device holds at
    most two keys, and one that missed a rotation is handed the whole set on its next heartbeat.
    Returns how many devices got a next key (devices that already have one are skipped)."""
    now = now or timezone.now()
    activates = now + lead
    devices = Device.objects.active().order_by("pk")
    if device_ids is not None:
        devices = devices.filter(pk__in=device_ids)
    all_ids = list(devices.values_list("pk", flat=True))
    started = 0
    for start in range(0, len(all_ids), 1000):
        chunk = all_ids[start : start + 1000]
        have_next = set(DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.NEXT).values_list("device_id", flat=True))
        todo = [d for d in chunk if d not in have_next]
        if not todo:
            continue
        _retire(DeviceKey.objects.filter(device_id__in=todo, state=DeviceKey.State.PREVIOUS), now)
        numbers = dict(
            DeviceKey.objects.filter(device_id__in=todo).values("device_id").annotate(m=Max("number")).values_list("device_id", "m")
        )
        DeviceKey.objects.bulk_create(
            [_new_key(d, numbers.get(d, 0) + 1, DeviceKey.State.NEXT, now, activates_at=activates) for d in todo]
        )
        markers.dirty_on_commit(todo)
        started += len(todo)
    audit.record(actor=actor, action="command_keys.rotate", target=("devicekey", "*"),
                 data={"devices": started, "activates_at": activates.isoformat()})
    return started


def promote_due_keys(*, now: datetime | None = None) -> int:
    """next -> current (and current -> previous) for keys whose activation time has come."""
    now = now or timezone.now()
    due = list(
        DeviceKey.objects.filter(state=DeviceKey.State.NEXT, activates_at__lte=now).order_by("device_id").values_list("device_id", flat=True)
    )
    for start in range(0, len(due), 1000):
        chunk = due[start : start + 1000]
        with transaction.atomic():
            _retire(DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.PREVIOUS), now)
            DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.CURRENT).update(state=DeviceKey.State.PREVIOUS)
            DeviceKey.objects.filter(device_id__in=chunk, state=DeviceKey.State.NEXT, activates_at__lte=now).update(
                state=DeviceKey.State.CURRENT
            )
            markers.dirty_on_commit(chunk)
    if due:
        audit.record(actor=None, action="command_keys.promote", target=("devicekey", "*"), data={"devices": len(due)})
    return len(due)


def acknowledge_kids(device_id, kids: list[str], keys: list[DeviceKey], now) -> list[DeviceKey]:
    """The device's kids show it holds the current key: the previous one can go."""
    current = next((k for k in keys if k.state == DeviceKey.State.CURRENT), None)
    previous = [k for k in keys if k.state == DeviceKey.State.PREVIOUS]
    if current is None or not previous or current.kid not in kids:
        return keys
    _retire(DeviceKey.objects.filter(pk__in=[k.pk for k in previous], state=DeviceKey.State.PREVIOUS), now)
    return [k for k in keys if k.state != DeviceKey.State.PREVIOUS]

