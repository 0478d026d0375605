"""State changes of the enrollment app (see STYLE.md: the only place that changes state)."""

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from commands import device_hooks
from devices import tokens
from devices.models import Device, DeviceGroup, DeviceStatus
from enrollment.models import KEY_PREFIX, BloatwarePreset, EnrollmentKey, TweakPreset, hash_key
from mdm import audit, metrics
from mdm.models import FleetSettings

RETRY_WINDOW_S = 600
_RETRY_CACHE = "enroll:retry:"


class EnrollRefused(Exception):
    """An enrollment answered with a protocol error (status, code, detail)."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True)
class Enrolled:
    status: int  # 201 new, 200 re-enrolled (or the original status of a retry)
    answer: dict
    device: Device
    outcome: str  # created | reenrolled | retried


# --- Keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    key: EnrollmentKey
    raw: str  # shown once, never stored


@transaction.atomic
def create_enrollment_key(
    *,
    actor,
    name: str,
    expires_at: datetime | None = None,
    max_uses: int | None = None,
    group: DeviceGroup | None = None,
    tags=(),
    ip: str | None = None,
) -> NewKey:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = EnrollmentKey.objects.create(
        name=name.strip(),
        key_hash=hash_key(raw),
        prefix=raw[: len(KEY_PREFIX) + 6],
        created_by=actor if actor is not None and not isinstance(actor, str) else None,
        expires_at=expires_at,
        max_uses=max_uses,
        group=group,
    )
    if tags:
        key.tags.set(tags)
    audit.record(
        actor=actor,
        action="enrollment_key.create",
        target=key,
        data={
            "name": key.name,
            "prefix": key.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "max_uses": max_uses,
            "group": group.name if group else None,
            "tags": sorted(t.name for t in tags),
        },
        ip=ip,
    )
    return NewKey(key=key, raw=raw)


@transaction.atomic
def revoke_enrollment_key(*, actor, key: EnrollmentKey, ip: str | None = None) -> EnrollmentKey:
    updated = EnrollmentKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if updated:
        audit.record(actor=actor, action="enrollment_key.revoke", target=key, data={"name": key.name}, ip=ip)
    key.refresh_from_db()
    return key


# --- Enrollment ------------------------------------------------------------------------------


def enroll_device(
    *, raw_key: str, hardware_id: str, info: dict, presented_token: str | None = None, ip: str | None = None
) -> Enrolled:
    """POST /api/v1/enroll (PROTOCOL.md). `info` holds the validated optional fields. Raises
    EnrollRefused for every protocol error; never leaves a half-created device (one transaction,
    hardware_id unique)."""
    key = EnrollmentKey.objects.filter(key_hash=hash_key(raw_key)).first()
    if key is None or key.revoked_at is not None:
        raise EnrollRefused(401, "key_invalid", "Unknown or revoked enrollment key.")
    if key.is_expired(timezone.now()):
        raise EnrollRefused(403, "key_expired", "This enrollment key has expired.")
    issued = tokens.issue()  # bcrypt: outside the transaction, so no lock is held meanwhile
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _enroll(key, hardware_id, info, issued, presented_token, ip)
        except IntegrityError:
            # Two first enrollments of one hardware id raced: the loser's INSERT failed on the
            # unique index and rolled back whole. Once more, it finds the winner's row.
            if attempt == 2:
                raise EnrollRefused(503, "busy", "Enrollment conflict, retry shortly.") from None
    raise AssertionError("unreachable")


def _enroll(key, hardware_id, info, issued, presented_token, ip) -> Enrolled:
    now = timezone.now()
    device = Device.objects.select_for_update().filter(hardware_id=hardware_id).first()
    if device is not None and device.deleted_at is not None:
        raise EnrollRefused(403, "device_retired", "This device was deleted by an admin; an admin can restore it.")

    if device is not None:
        retry = _retry_of(device, key)
        if retry is not None:
            return _answer_retry(device, key, retry, issued, ip)
        _check_reenroll_allowed(device, presented_token, now)

    if key.is_exhausted:
        raise EnrollRefused(403, "key_exhausted", "This enrollment key has no uses left.")

    fields = {name: value for name, value in info.items() if name != "fcm_token"}
    token_fields = {
        "token_id": issued.token_id,
        "token_hash": issued.token_hash,
        "token_issued_at": now,
        "token_used_at": None,
        "enrolled_with": key.name[:100],
        "last_enrolled_at": now,
    }
    if device is None:
        reenrolled = False
        device = Device(hardware_id=hardware_id, enrolled_at=now, group=key.group, **fields, **token_fields)
        if info.get("fcm_token"):
            device.fcm_token = info["fcm_token"]
        device.save(force_insert=True)
        DeviceStatus.objects.create(device=device)
        key_tags = list(key.tags.all())
        if key_tags:
            device.tags.set(key_tags)
    else:
        reenrolled = True
        old_token_id = device.token_id
        for name, value in {**fields, **token_fields}.items():
            setattr(device, name, value)
        update_fields = [*fields, *token_fields, "enrollment_count"]
        device.enrollment_count = F("enrollment_count") + 1
        if key.group_id:
            device.group_id = key.group_id
            update_fields.append("group")
        if "fcm_token" in info:
            device.fcm_token = info["fcm_token"]
            update_fields.append("fcm_token")
        device.save(update_fields=update_fields)
        device.refresh_from_db(fields=["enrollment_count"])
        key_tags = list(key.tags.all())
        if key_tags:
            device.tags.add(*key_tags)
        tokens.forget_on_commit(old_token_id)
        if info.get("fcm_token"):
            Device.objects.filter(fcm_token=info["fcm_token"]).exclude(pk=device.pk).update(fcm_token="")

    command_keys = device_hooks.keys_on_enroll(device=device, reenrolled=reenrolled)
    _use_key(key, now)  # last: the key row stays locked only until commit
    status = 200 if reenrolled else 201
    audit.record(
        actor=f"key:{key.name}",
        action="enrollment_key.use",
        target=key,
        data={"device_id": str(device.pk), "hardware_id": hardware_id, "reenrolled": reenrolled},
        ip=ip,
    )
    # Set before commit (nothing can fail after this point): a retry racing the commit then finds
    # it. Were the transaction to roll back, the entry would name a device that does not exist.
    retry_entry = {"key_id": str(key.pk), "status": status, "command_keys": command_keys, "at": time.time()}
    cache.set(_RETRY_CACHE + str(device.pk), retry_entry, RETRY_WINDOW_S)
    return Enrolled(
        status=status,
        answer=_answer(device, issued.token, command_keys, now),
        device=device,
        outcome="reenrolled" if reenrolled else "created",
    )


def _use_key(key: EnrollmentKey, now: datetime) -> None:
    used = (
        EnrollmentKey.objects.filter(pk=key.pk, revoked_at__isnull=True)
        .filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")))
        .update(uses=F("uses") + 1, last_used_at=now)
    )
    if not used:  # revoked or used up by a concurrent enrollment since we looked
        raise EnrollRefused(403, "key_exhausted", "This enrollment key has no uses left.")


def _retry_of(device: Device, key: EnrollmentKey) -> dict | None:
    """The original answer's essentials when this request repeats an enrollment with the same key
    within 10 minutes and the token then issued never authenticated (PROTOCOL.md retry safety).
    Kept in the cache for exactly that window, command keys included."""
    if device.token_id is None or device.token_used_at is not None:  # revoked (deleted) or used
        return None
    entry = cache.get(_RETRY_CACHE + str(device.pk))
    if not entry or entry["key_id"] != str(key.pk) or time.time() - entry["at"] > RETRY_WINDOW_S:
        return None
    return entry


def _answer_retry(device: Device, key: EnrollmentKey, retry: dict, issued, ip) -> Enrolled:
    now = timezone.now()
    old_token_id = device.token_id
    device.token_id, device.token_hash, device.token_issued_at = issued.token_id, issued.token_hash, now
    device.save(update_fields=["token_id", "token_hash", "token_issued_at"])
    tokens.forget_on_commit(old_token_id)
    audit.record(
        actor=f"key:{key.name}",
        action="enrollment.retry",
        target=device,
        data={"key": key.name, "status": retry["status"]},
        ip=ip,
    )
    return Enrolled(
        status=retry["status"],
        answer=_answer(device, issued.token, retry["command_keys"], now),
        device=device,
        outcome="retried",
    )


def _check_reenroll_allowed(device: Device, presented_token: str | None, now: datetime) -> None:
    if FleetSettings.current().reenroll_policy != FleetSettings.Reenroll.APPROVAL:
        return
    if presented_token and tokens.verify(presented_token) == str(device.pk):
        return
    if device.reenroll_approved_until is not None and device.reenroll_approved_until > now:
        device.reenroll_approved_until = None  # one-shot
        device.save(update_fields=["reenroll_approved_until"])
        return
    raise EnrollRefused(409, "reenroll_needs_approval", "Re-enrollment of this device needs an admin's approval.")


def _answer(device: Device, token: str, command_keys: list, now: datetime) -> dict:
    return {
        "device_id": str(device.pk),
        "device_token": token,
        "heartbeat_interval_s": FleetSettings.current().heartbeat_interval_s,
        "command_keys": command_keys,
        "server_time": int(now.timestamp()),
    }


def count_enrollment(outcome: str) -> None:
    metrics.ENROLLMENTS.labels(outcome).inc()


# --- Presets ---------------------------------------------------------------------------------


def save_bloatware_preset(*, actor, preset: BloatwarePreset | None, name: str, description: str, packages: list[str], ip=None) -> BloatwarePreset:
    return _save_preset(actor=actor, preset=preset, model=BloatwarePreset, action="bloatware_preset",
                        name=name, description=description, field="packages", items=packages, ip=ip)


def save_tweak_preset(*, actor, preset: TweakPreset | None, name: str, description: str, settings: list[dict], ip=None) -> TweakPreset:
    return _save_preset(actor=actor, preset=preset, model=TweakPreset, action="tweak_preset",
                        name=name, description=description, field="settings", items=settings, ip=ip)


@transaction.atomic
def _save_preset(*, actor, preset, model, action: str, name: str, description: str, field: str, items: list, ip):
    created = preset is None
    preset = preset or model()
    preset.name, preset.description = name.strip(), description
    setattr(preset, field, items)
    preset.save(update_fields=None if created else ["name", "description", field, "updated_at"])
    audit.record(
        actor=actor,
        action=f"{action}.{'create' if created else 'update'}",
        target=(model._meta.model_name, str(preset.pk)),
        data={"name": preset.name, field: len(items)},
        ip=ip,
    )
    return preset


@transaction.atomic
def delete_preset(*, actor, preset, ip=None) -> None:
    audit.record(actor=actor, action=f"{preset._meta.model_name}.delete", target=(preset._meta.model_name, str(preset.pk)), data={"name": preset.name}, ip=ip)
    preset.delete()


def expires_in_days(days: int | None) -> datetime | None:
    return timezone.now() + timedelta(days=days) if days else None

