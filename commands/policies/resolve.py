"""Which policy a device has (docs/policies.md "Precedence"): its own assignment, else its
group's, else the fleet default, else none (version 0). One indexed query for one device; a pass
over the fleet in memory for the reconciliation that follows every change."""

import uuid

from django.db import connection
from django.db.models import Case, IntegerField, Q, Subquery, Value, When

from commands.policies.models import PolicyAssignment
from devices import compliance
from devices.models import Device

NONE = (None, 0)
FEW = 20  # up to this many devices are resolved one query each
_RANK = Case(When(device__isnull=False, then=Value(0)), When(group__isnull=False, then=Value(1)), default=Value(2),
             output_field=IntegerField())


def current_for_device(device_id) -> tuple[uuid.UUID | None, int]:
    """(policy id, version) of the device's policy, or (None, 0). One query: the assignment
    lookups use the unique indexes on device and group, the fleet default its partial one."""
    group = Subquery(Device.objects.filter(pk=device_id).values("group_id")[:1])
    row = (PolicyAssignment.objects.filter(Q(device_id=device_id) | Q(group_id=group) | Q(fleet_default=True))
           .annotate(rank=_RANK).order_by("rank").values_list("policy_id", "policy__current_id").first())
    return (row[0], row[1] or 0) if row else NONE


def _assignments():
    by_device, by_group, default = {}, {}, NONE
    rows = PolicyAssignment.objects.values_list("policy_id", "policy__current_id", "device_id", "group_id", "fleet_default")
    for policy_id, version, device_id, group_id, fleet_default in rows:
        value = (policy_id, version or 0)
        if device_id is not None:
            by_device[device_id] = value
        elif group_id is not None:
            by_group[group_id] = value
        elif fleet_default:
            default = value
    return by_device, by_group, default


def _lock() -> None:
    """Reconciliations run one at a time, so two changes committing together cannot each write
    what they computed without the other's rows (PostgreSQL; SQLite writers are serial anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('mdm.policies.reconcile'))")


def reconcile(device_ids=None, *, lock: bool = True) -> dict:
    """Inside the transaction of a change: resolve the policy of the given active devices (all when
    None), store it on their devices-side rows (devices.compliance) and return the devices whose
    (policy id, version) changed: {device id (str): (policy id, version)}. `lock` False: for one
    enrolling device, whose transaction must not queue behind others in a registration storm."""
    if lock:
        _lock()
    devices = Device.objects.active()
    if device_ids is not None:
        device_ids = list(device_ids)
        devices = devices.filter(pk__in=device_ids)
    if device_ids is not None and len(device_ids) <= FEW:
        # An enrollment or a regrouping: one indexed query per device, not every assignment.
        resolved = {str(d): current_for_device(d) for d in devices.values_list("pk", flat=True)}
    else:
        by_device, by_group, default = _assignments()
        resolved = {}
        for device_id, group_id in devices.values_list("pk", "group_id").iterator(chunk_size=5000):
            resolved[str(device_id)] = by_device.get(device_id) or by_group.get(group_id) or default
    known = compliance.resolved_states(None if device_ids is None else resolved)
    changed = {d: value for d, value in resolved.items() if known.get(d, NONE) != value}
    compliance.set_resolved(changed)
    return changed
