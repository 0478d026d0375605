"""Enrollment keys: created and revoked by admins; the key itself is shown once."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from devices.models import DeviceGroup
from enrollment.models import KEY_PREFIX, EnrollmentKey, hash_key
from mdm import audit


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


def expires_in_days(days: int | None) -> datetime | None:
    return timezone.now() + timedelta(days=days) if days else None

