"""The dashboard's recent activity: what people and the server's own jobs did, read from the audit
log in words, without the chatter a fleet makes by itself.

Every enrollment writes an audit row (`enrollment_key.use`): a hundred devices enrolling would
push everything else off a plain feed. Those rows come as one line per key and day ("12 devices
enrolled with key Berlin"); the other machine actions in NOISE are left out (the audit log keeps
them all)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.urls import reverse

from mdm.models import AuditEvent

ENROLLED = "enrollment_key.use"
# Written by devices and keys, or by a periodic job, many times a day: in the audit log only.
NOISE = (ENROLLED, "enrollment.retry", "reenroll_request.use", "command_keys.promote")
WINDOW = timedelta(days=30)

NOUNS = {
    "api_key": "API key", "alert": "alert", "alert_preferences": "alert preferences", "alert_rule": "alert rule",
    "apk": "APK", "command": "command", "command_keys": "command keys", "dead_letters": "set-aside writes",
    "device": "device", "enrollment_key": "enrollment key", "fleet_settings": "fleet settings", "group": "group",
    "maintenance_window": "maintenance window", "policy": "policy", "preset": "preset",
    "reenroll_request": "re-enrollment request", "rollout": "rollout", "shell_allowlist": "shell allowlist rule",
    "tag": "tag", "user": "user", "webhook": "webhook", "wifi": "Wi-Fi config", "wifi_config": "Wi-Fi config",
}
VERBS = {
    "acknowledge": "acknowledged", "activate": "activated", "approve": "approved", "archive": "archived",
    "assign": "assigned", "cancel": "cancelled", "complete": "completed", "create": "created",
    "deactivate": "deactivated", "delete": "deleted", "deny": "denied", "deploy": "deployed", "halt": "halted",
    "issue": "issued", "open": "opened", "purge": "purged", "push": "pushed", "register": "registered",
    "reject": "rejected", "remediate": "remediated", "restore": "restored", "revoke": "revoked",
    "rollback": "rolled back", "rotate": "rotated", "snooze": "snoozed", "test": "tested", "unassign": "unassigned",
    "update": "updated", "upload": "uploaded",
}
# Actions whose generic wording ("<verb> <noun>") would read wrong.
PHRASES = {
    "fleet_settings.update": "changed the fleet settings",
    "user.set_role": "changed a user's role",
    "user.password_change": "changed a password",
    "user.update_profile": "updated a profile",
    "rollout.wave_start": "started a rollout wave",
    "rollout.wave_done": "finished a rollout wave",
    "alert_rule.remediation_stopped": "stopped an alert rule's remediation",
    "apk.signer_change": "met a changed APK signer",
    "apk.confirm_signer_change": "confirmed a changed APK signer",
    "apk.mark_agent": "marked an APK as the agent",
    "apk.refuse": "refused an APK",
    "device.enroll": "enrolled a device",
}
LINKS = {"device": "devices:detail", "command": "commands:detail", "policy": "commands:policy_detail",
         "rollout": "apks:rollout", "alert": "alerts:detail"}


@dataclass(frozen=True)
class Entry:
    at: datetime
    who: str
    what: str
    name: str = ""  # the object's name, when the event carries one
    link: str = ""


def recent(*, now: datetime, limit: int = 10) -> list[Entry]:
    """The latest `limit` lines of the last 30 days, newest first, from two queries (each bounded
    by the `at` and (action, at) indexes and by `limit`)."""
    since = now - WINDOW
    events = AuditEvent.objects.filter(at__gte=since).exclude(action__in=NOISE).order_by("-at")[:limit]
    enrolled = (
        AuditEvent.objects.filter(action=ENROLLED, at__gte=since)
        .annotate(day=TruncDate("at")).values("actor_label", "day")
        .annotate(n=Count("pk"), again=Count("pk", filter=Q(data__reenrolled=True)), last=Max("at"))
        .order_by("-last")[:limit]
    )
    lines = [_entry(e) for e in events] + [_enrolled(g) for g in enrolled]
    return sorted(lines, key=lambda line: line.at, reverse=True)[:limit]


def who(label: str) -> str:
    kind, _, name = label.partition(":")
    return {"user": name, "key": f"key {name}", "device": "a device", "system": "the server"}.get(kind, label)


def _entry(event: AuditEvent) -> Entry:
    noun, _, verb = event.action.partition(".")
    what = PHRASES.get(event.action) or (
        f"{VERBS.get(verb, verb.replace('_', ' '))} {_article(NOUNS.get(noun, noun.replace('_', ' ')))}")
    data = event.data if isinstance(event.data, dict) else {}
    name = data.get("name") or data.get("type") or ""
    return Entry(at=event.at, who=who(event.actor_label), what=what, name=str(name)[:80],
                 link=_link(event.target_type, event.target_id) if not event.action.endswith(".delete") else "")


def _enrolled(group: dict) -> Entry:
    n, again = group["n"], group["again"]
    what = f"{n} device{'s' if n != 1 else ''} enrolled" + (f" ({again} again)" if again else "")
    return Entry(at=group["last"], who=who(group["actor_label"]), what=what)


def _article(noun: str) -> str:
    if noun.endswith(("settings", "preferences", "keys", "writes")):
        return f"the {noun}"
    return f"{'an' if noun[:1] in 'aeioAEIO' else 'a'} {noun}"  # a user, an APK


def _link(target_type: str, target_id: str) -> str:
    try:
        return reverse(LINKS[target_type], args=[uuid.UUID(target_id)]) if target_type in LINKS else ""
    except ValueError:  # "*" and other ids that name no page
        return ""
