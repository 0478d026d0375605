"""Policy compliance on the devices side (devices.models.DevicePolicyState): what the policy
channel (commands/, above) resolved for each device, what the device reported, and the reads the
device list's filters and the dashboard share. commands/ calls the two writes from its services,
inside their transactions."""

from datetime import datetime

from django.db import connection
from django.db.models import Count, F, Q

from devices.models import Device, DevicePolicyState
from mdm import sql


def compliant_q(prefix: str = "policy_state__") -> Q:
    """Devices (or, with prefix "", policy states) that hold their current version, every item applied."""
    return Q(**{f"{prefix}version__gt": 0, f"{prefix}applied_version": F(f"{prefix}version"), f"{prefix}all_applied": True})


def has_policy_q(prefix: str = "policy_state__") -> Q:
    return Q(**{f"{prefix}version__gt": 0})


_SET_RESOLVED = (
    "INSERT INTO {table} AS s (device_id, policy_id, version, applied_version, all_applied, items, reported_at) "
    "SELECT v.device_id, v.policy_id, v.version, NULL, false, '{{}}'::jsonb, NULL "
    "FROM unnest(%s::uuid[], %s::uuid[], %s::bigint[]) AS v(device_id, policy_id, version) "
    "ON CONFLICT (device_id) DO UPDATE SET policy_id = EXCLUDED.policy_id, version = EXCLUDED.version"
)


def set_resolved(resolved: dict) -> None:
    """resolved: {device id: (policy id or None, version)}; rows are created as needed. Call
    inside the caller's transaction (the policy edit or assignment that changed them). On
    PostgreSQL one statement over arrays: a fleet-wide change writes 2,000 rows or more inside an
    admin's request, and model instances cost the web process's CPU there."""
    if not resolved:
        return
    if connection.vendor == "postgresql":
        values = resolved.values()
        with connection.cursor() as cursor:
            cursor.execute(_SET_RESOLVED.format(table=sql.table(DevicePolicyState)),
                           [list(resolved), [p for p, _ in values], [v for _, v in values]])
        return
    rows = [DevicePolicyState(device_id=d, policy_id=p, version=v) for d, (p, v) in resolved.items()]
    DevicePolicyState.objects.bulk_create(rows, batch_size=2000, update_conflicts=True,
                                          unique_fields=["device"], update_fields=["policy_id", "version"])


def resolved_states(device_ids=None) -> dict:
    """{device id (str): (policy id or None, version)} as last resolved, for the given devices or all."""
    qs = DevicePolicyState.objects.all()
    if device_ids is not None:
        qs = qs.filter(device_id__in=list(device_ids))
    return {str(d): (p, v) for d, p, v in qs.values_list("device_id", "policy_id", "version")}


def record_report(*, device_id, version: int, items: dict, all_applied: bool, now: datetime) -> None:
    """A device's status report (PROTOCOL.md v1.1 PUT /device/policy/status): the last one wins."""
    updated = DevicePolicyState.objects.filter(device_id=device_id).update(
        applied_version=version, items=items, all_applied=all_applied, reported_at=now)
    if not updated:
        DevicePolicyState.objects.update_or_create(
            device_id=device_id,
            defaults={"applied_version": version, "items": items, "all_applied": all_applied, "reported_at": now})


def compliance_counts(devices=None) -> dict:
    """The dashboard's figures over active devices (or the given queryset of them):
    {"compliant", "non_compliant", "no_policy"}."""
    devices = Device.objects.active() if devices is None else devices
    n = devices.aggregate(total=Count("pk"), with_policy=Count("pk", filter=has_policy_q()),
                          compliant=Count("pk", filter=compliant_q()))  # one query
    return {"compliant": n["compliant"], "non_compliant": n["with_policy"] - n["compliant"],
            "no_policy": n["total"] - n["with_policy"]}
