from datetime import datetime

from django.db import transaction

from mdm import audit
from mdm.models import AuditEvent, FleetSettings

FLEET_SETTING_FIELDS = (
    "heartbeat_interval_s",
    "offline_after_s",
    "history_retention_days",
    "default_command_expiry_s",
    "reenroll_policy",
    "audit_retention_days",
)


@transaction.atomic
def update_fleet_settings(*, actor, ip: str | None = None, **values) -> FleetSettings:
    fleet = FleetSettings.objects.select_for_update().get_or_create(pk=1)[0]
    changed = {}
    for name, value in values.items():
        if name not in FLEET_SETTING_FIELDS:
            raise ValueError(f"unknown fleet setting {name}")
        if getattr(fleet, name) != value:
            changed[name] = {"from": getattr(fleet, name), "to": value}
            setattr(fleet, name, value)
    if changed:
        fleet.save(update_fields=[*changed, "updated_at"])
        audit.record(actor=actor, action="fleet_settings.update", target=("fleetsettings", "1"), data=changed, ip=ip)
        transaction.on_commit(FleetSettings.forget_cached)
    return fleet


PRUNE_BATCH = 10_000


def prune_audit(*, older_than: datetime) -> int:
    """Delete audit events older than `older_than`, PRUNE_BATCH at a time: after the retention is
    shortened there can be millions, and one DELETE would be one long transaction holding all
    their row locks (and a worker busy past its visibility timeout)."""
    deleted = 0
    while ids := list(AuditEvent.objects.filter(at__lt=older_than).order_by().values_list("pk", flat=True)[:PRUNE_BATCH]):
        deleted += AuditEvent.objects.filter(pk__in=ids).delete()[0]
    return deleted


def purge_dead_letters(*, actor, ip: str | None = None) -> int:
    """Delete every dead letter of the write-behind flushes (mdm.deadletters); audited."""
    from mdm import deadletters

    purged = deadletters.purge()
    audit.record(actor=actor, action="dead_letters.purge", target=("dead_letters", "all"), data={"purged": purged}, ip=ip)
    return purged
