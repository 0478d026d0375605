"""POST /api/v1/enroll (PROTOCOL.md): new devices, re-enrollment and retry safety."""

import hmac
import time
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from commands import device_hooks
from devices import tokens
from devices.models import Device, DeviceStatus
from enrollment.models import EnrollmentKey, hash_key
from enrollment.services.reenroll import Claim, NeedsApproval, parse_request_id, policy_allows_any, reenroll_allowed_by
from mdm import audit, metrics
from mdm.models import FleetSettings

RETRY_WINDOW_S = 600
_RETRY_CACHE = "enroll:retry:"


class EnrollRefused(Exception):
    """An enrollment answered with a protocol error (status, code, detail, and any extra fields of
    the answer, such as the 409's `reenroll_request`)."""

    def __init__(self, status: int, code: str, detail: str, extra: dict | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.extra = extra or {}


@dataclass(frozen=True)
class Enrolled:
    status: int  # 201 new, 200 re-enrolled (or the original status of a retry)
    answer: dict
    device: Device
    outcome: str  # created | reenrolled | retried


def enroll_device(
    *,
    raw_key: str,
    hardware_id: str,
    info: dict,
    presented_token: str | None = None,
    reenroll_request: str | None = None,
    ip: str | None = None,
) -> Enrolled:
    """POST /api/v1/enroll (PROTOCOL.md). `info` holds the validated optional fields,
    `presented_token` the request's `Authorization: Device` token, `reenroll_request` the body's
    request id. Raises EnrollRefused for every protocol error; never leaves a half-created device
    (one transaction, hardware_id unique)."""
    key = EnrollmentKey.objects.filter(key_hash=hash_key(raw_key)).first()
    if key is None or key.revoked_at is not None:
        raise EnrollRefused(401, "key_invalid", "Unknown or revoked enrollment key.")
    if key.is_expired(timezone.now()):
        raise EnrollRefused(403, "key_expired", "This enrollment key has expired.")
    claim = Claim(token=presented_token, request_id=parse_request_id(reenroll_request))
    issued = tokens.issue()  # bcrypt: outside the transaction, so no lock is held meanwhile
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                outcome = _enroll(key, hardware_id, info, issued, claim, ip)
            break
        except IntegrityError:
            # Two first enrollments of one hardware id raced: the loser's INSERT failed on the
            # unique index and rolled back whole. Once more, it finds the winner's row.
            if attempt == 2:
                raise EnrollRefused(503, "busy", "Enrollment conflict, retry shortly.") from None
    if isinstance(outcome, NeedsApproval):
        raise EnrollRefused(
            409,
            "reenroll_needs_approval",
            "This device is already enrolled. Re-enrolling it needs its current device token or an "
            "admin's approval of this request; repeat the enrollment with reenroll_request.",
            extra={"reenroll_request": str(outcome.request_id)},
        )
    return outcome


def _enroll(key, hardware_id, info, issued, claim: Claim, ip) -> Enrolled | NeedsApproval:
    now = timezone.now()
    device = Device.objects.select_for_update().filter(hardware_id=hardware_id).first()
    if device is not None and device.deleted_at is not None:
        raise EnrollRefused(403, "device_retired", "This device was deleted by an admin; an admin can restore it.")

    allowed_by = "created"
    if device is not None:
        retry = _retry_of(device, key, claim)
        if retry is not None:
            return _answer_retry(device, key, retry, issued, ip)

    if key.is_exhausted:
        raise EnrollRefused(403, "key_exhausted", "This enrollment key has no uses left.")

    if device is not None:
        allowed_by = reenroll_allowed_by(device, key, claim, info, now, ip)
        if isinstance(allowed_by, NeedsApproval):
            return allowed_by

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
        data={"device_id": str(device.pk), "hardware_id": hardware_id, "reenrolled": reenrolled, "allowed_by": allowed_by},
        ip=ip,
    )
    # Set before commit (nothing can fail after this point): a retry racing the commit then finds
    # it. Were the transaction to roll back, the entry would name a device that does not exist.
    # `allowed_by` and what the request presented go with it: a repeat must present the same.
    retry_entry = {
        "key_id": str(key.pk),
        "status": status,
        "command_keys": command_keys,
        "at": time.time(),
        "allowed_by": allowed_by,
        "token_digest": claim.token_digest() if allowed_by == "token" else None,
        "request_id": str(claim.request_id) if allowed_by == "request" else None,
    }
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


def _retry_of(device: Device, key: EnrollmentKey, claim: Claim) -> dict | None:
    """The original answer's essentials when this request repeats an enrollment with the same key
    within 10 minutes and the token then issued never authenticated (PROTOCOL.md retry safety).
    Kept in the cache for exactly that window, command keys included.

    A repeat must show what let the original in, or retry safety would be a way around v1.1: a
    re-enrollment let in by the device's token is repeated with that same (now revoked) token, one
    let in by an approved request with that request's id, one let in by the `allowed` policy only
    while the policy still says so. A first enrollment (201) needed nothing and needs nothing."""
    if device.token_id is None or device.token_used_at is not None:  # revoked (deleted) or used
        return None
    entry = cache.get(_RETRY_CACHE + str(device.pk))
    if not entry or entry["key_id"] != str(key.pk) or time.time() - entry["at"] > RETRY_WINDOW_S:
        return None
    # An entry written before v1.1 says nothing of what let it in: only a 201's is a retry then.
    allowed_by = entry.get("allowed_by") or ("created" if entry["status"] == 201 else "unknown")
    if allowed_by == "token":
        shown = claim.token_digest()
        return entry if shown and hmac.compare_digest(shown, entry["token_digest"]) else None
    if allowed_by == "request":
        return entry if claim.request_id is not None and str(claim.request_id) == entry["request_id"] else None
    if allowed_by == "policy":
        return entry if policy_allows_any() else None
    return entry if allowed_by == "created" else None


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
