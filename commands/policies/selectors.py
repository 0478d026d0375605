"""Reads of the policy pages: a fixed number of queries whatever the number of policies or
devices (each list is held to a query bound in commands/tests/test_policy_console.py)."""

from django.db.models import Count, Q

from commands.policies import forms
from commands.policies.models import Policy, PolicyAssignment, PolicyVersion
from commands.policies.services import diff_summary
from devices import compliance
from devices.models import DevicePolicyState
from mdm.models import AuditEvent

VERSIONS_SHOWN = 50
NON_COMPLIANT_SHOWN = 20


def _states():
    """The devices-side rows of active devices that resolve to some policy."""
    return DevicePolicyState.objects.filter(version__gt=0, device__deleted_at__isnull=True)


def _counts(states) -> dict:
    return states.aggregate(devices=Count("pk"), compliant=Count("pk", filter=compliance.compliant_q("")),
                            reported=Count("pk", filter=Q(applied_version__isnull=False)))


def _assignment_summary(rows) -> dict:
    return {"fleet_default": any(a.fleet_default for a in rows),
            "groups": sorted(a.group.name for a in rows if a.group_id),
            "device_count": sum(1 for a in rows if a.device_id)}


def policy_rows() -> list[Policy]:
    """Every policy with `assigned` (its assignment summary) and `counts` (its devices, how many
    comply): three queries."""
    policies = list(Policy.objects.select_related("current").order_by("name"))
    assignments: dict = {}
    # device__deleted_at__isnull: a LEFT JOIN, so group and fleet-default rows pass too.
    for a in PolicyAssignment.objects.select_related("group").filter(device__deleted_at__isnull=True):
        assignments.setdefault(a.policy_id, []).append(a)
    counts = {row["policy_id"]: row for row in _states().values("policy_id").annotate(
        devices=Count("pk"), compliant=Count("pk", filter=compliance.compliant_q("")))}
    for policy in policies:
        policy.assigned = _assignment_summary(assignments.get(policy.pk, []))
        row = counts.get(policy.pk, {"devices": 0, "compliant": 0})
        policy.counts = {"devices": row["devices"], "compliant": row["compliant"],
                         "non_compliant": row["devices"] - row["compliant"]}
    return policies


def policy_compliance(policy: Policy) -> dict:
    n = _counts(_states().filter(policy_id=policy.pk))
    return {**n, "non_compliant": n["devices"] - n["compliant"], "not_reported": n["devices"] - n["reported"]}


def non_compliant_devices(policy: Policy) -> list[DevicePolicyState]:
    rows = (_states().filter(policy_id=policy.pk).exclude(compliance.compliant_q(""))
            .select_related("device").order_by("device__hardware_id")[:NON_COMPLIANT_SHOWN])
    out = []
    for state in rows:
        state.failing = [(name, item.get("state", "?"), item.get("reason", "")) for name, item in sorted(state.items.items())
                         if isinstance(item, dict) and item.get("state") != "applied"]
        out.append(state)
    return out


def assignments(policy: Policy) -> dict:
    rows = list(PolicyAssignment.objects.filter(policy=policy, device__deleted_at__isnull=True).select_related("group"))
    return _assignment_summary(rows)


def versions(policy: Policy) -> list[PolicyVersion]:
    """The newest versions, each with `summary`: what it added, removed or changed (item names)."""
    rows = list(PolicyVersion.objects.filter(policy=policy).order_by("-id")[: VERSIONS_SHOWN + 1])
    for newer, older in zip(rows, rows[1:] + [None]):
        newer.summary = diff_summary(older.items if older else {}, newer.items)
    return rows[:VERSIONS_SHOWN]


def version_of(policy: Policy, number) -> PolicyVersion | None:
    try:
        number = int(number)
    except (TypeError, ValueError):
        return None
    return PolicyVersion.objects.filter(policy=policy, pk=number).first()


def history(policy: Policy, limit: int = 20):
    return AuditEvent.objects.filter(target_type="policy", target_id=str(policy.pk)).order_by("-at")[:limit]


def editor_choices() -> dict:
    """What the editor offers: stored Wi-Fi configs, the console's allowlist, APK releases."""
    from commands.models import ShellAllowRule

    return {"wifi_configs": list(forms.wifi_choices()), "console_rules": list(ShellAllowRule.objects.filter(enabled=True)),
            "packages": forms.releases_by_package()}


def kiosk_of(device_id) -> dict | None:
    """The kiosk item ({"package", "activity"?, ...}) of the policy version the device resolves to,
    or None: one query, reading only that item of the version's JSON."""
    version = DevicePolicyState.objects.filter(device_id=device_id, version__gt=0).values("version")[:1]
    kiosk = PolicyVersion.objects.filter(pk=version).values_list("items__kiosk", flat=True).first()
    return kiosk if isinstance(kiosk, dict) and kiosk.get("package") else None
