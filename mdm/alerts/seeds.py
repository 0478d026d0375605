"""The rules a new installation starts with (docs/alerts.md): one per built-in kind, enabled,
telling every admin who has an e-mail address. It runs once, in the migration that creates the
tables; it is idempotent by `seed_key` and never touches a seeded rule an admin has changed."""

from mdm.alerts.kinds import KINDS

NAMES = {
    "device_offline": "Device offline",
    "battery_low": "Battery low",
    "storage_low": "Storage almost full",
    "battery_hot": "Battery overheating",
    "bad_envelopes": "Forged or mis-keyed commands",
    "clock_drift": "Clock drift",
    "policy_noncompliant": "Not compliant with policy",
    "security_patch_old": "Security patch out of date",
    "kiosk_not_in_front": "Kiosk app left the screen",
    "command_failure_rate": "Command failing on many devices",
    "rollout_halted": "Staged rollout halted",
    "server_dead_letters": "Device data could not be stored",
    "server_push_failures": "Push notifications failing",
    "server_queue_depth": "Background work backing up",
    "server_worker_silent": "No background worker running",
    "server_rule_failing": "Alert rule cannot be evaluated",
}


def seed(AlertRule, AuditEvent=None) -> int:
    """Create the missing seeded rules (models passed in, so a migration can call it)."""
    made = 0
    seen = set(AlertRule.objects.exclude(seed_key="").values_list("seed_key", flat=True))
    for key, kind in KINDS.items():
        if key in seen:
            continue
        params = {name: p.default for name, p in kind.params.items()}
        name = NAMES[key]
        if AlertRule.objects.filter(name=name).exists():
            name = f"{name} (built-in)"
        AlertRule.objects.create(name=name, kind=key, enabled=True, severity=kind.severity, params=params,
                                 scope={"all": True}, hold_s=kind.hold_s, clear_s=kind.clear_s,
                                 notify={"admins": True}, seed_key=key)
        made += 1
    return made
