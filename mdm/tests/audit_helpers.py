"""Audit events made at a chosen time, for the audit log's tests (`at` is set on insert)."""

from datetime import datetime, timedelta

from django.utils import timezone

from mdm import audit
from mdm.models import AuditEvent


def event(*, at: datetime | None = None, actor=None, action: str = "thing.do", target=None, data=None, ip=None) -> AuditEvent:
    made = audit.record(actor=actor, action=action, target=target, data=data, ip=ip)
    if at is not None:
        AuditEvent.objects.filter(pk=made.pk).update(at=at)
        made.refresh_from_db()
    return made


def days_ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)
