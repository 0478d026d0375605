from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from mdm import services
from mdm.models import FleetSettings

MIN_AUDIT_RETENTION_DAYS = 30


@shared_task
def prune_audit(days: int | None = None) -> int:
    """Delete audit events past the fleet's retention (FleetSettings.audit_retention_days, set in
    the settings drawer; never under 30 days). `days` overrides it, for a one-off run."""
    days = max(days or FleetSettings.current().audit_retention_days, MIN_AUDIT_RETENTION_DAYS)
    return services.prune_audit(older_than=timezone.now() - timedelta(days=days))
