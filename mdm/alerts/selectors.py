"""Reads of alerting for the console and the API: one scoping helper, the open count, an alert's
timeline (its events and remediation runs in time order, in words)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q

from mdm.alerts.filters import TABS, tab_q
from mdm.alerts.models import Alert, AlertEvent, Notification, RemediationRun


def alerts_for(user):
    """Every alert a user may see: every signed-in role sees the whole fleet today (as devices)."""
    if not getattr(user, "is_authenticated", False):
        return Alert.objects.none()
    return (Alert.objects.select_related("rule", "acknowledged_by")
            .order_by(F("fired_at").desc(nulls_last=True), "-since", "pk"))


def open_count() -> int:
    """Firing and not acknowledged: what the navigation and the dashboard count."""
    return Alert.objects.filter(tab_q("open")).count()


def tab_counts() -> dict[str, int]:
    counts = Alert.objects.aggregate(**{tab: Count("pk", filter=tab_q(tab)) for tab in TABS if tab != "all"})
    return counts


@dataclass
class Entry:
    at: datetime
    kind: str
    text: str
    detail: dict


EVENT_WORDS = {
    "pending": "The condition started holding",
    "fired": "Fired",
    "reopened": "The condition came back (re-opened)",
    "flapping": "Marked flapping: it fires and resolves over and over",
    "notified": "Notified",
    "acknowledged": "Acknowledged",
    "snoozed": "Snoozed",
    "resolved": "Resolved",
    "escalated": "Escalated: remediation failed",
}


def _event_text(e: AlertEvent) -> str:
    d = e.detail or {}
    words = EVENT_WORDS.get(e.kind, e.kind.replace("_", " ").capitalize())
    if e.kind == "notified":
        what = {"resolved": "of the resolve", "escalated": "of the failed remediation", "digest": "in the digest"}.get(
            d.get("event"), "")
        emails, hooks = d.get("emails", 0), d.get("webhooks", 0)
        words = f"Notified {what}".strip() + f": {emails} e-mail recipient{'s' if emails != 1 else ''}, " \
                f"{hooks} webhook{'s' if hooks != 1 else ''}"
    elif e.kind in ("acknowledged", "snoozed") and d.get("by"):
        words += f" by {str(d['by']).removeprefix('user:')}"
        if d.get("until"):
            words += f" until {d['until'][:16].replace('T', ' ')} UTC"
    elif e.kind == "resolved" and d.get("reason"):
        words += f" ({d['reason']})"
    elif e.kind in ("pending", "reopened") and d.get("value") is not None:
        words += f" (value {d['value']})"
    return words


def timeline(alert: Alert) -> list[Entry]:
    """Fired, notified, remediation tried and its result, acknowledged, resolved: oldest first."""
    entries = [Entry(e.at, e.kind, _event_text(e), e.detail or {}) for e in alert.events.all()[:500]]
    if not any(e.kind == "pending" for e in entries):  # the start is the alert's `since`, not an event row
        entries.insert(0, Entry(alert.since, "pending", EVENT_WORDS["pending"], {}))
    for run in RemediationRun.objects.filter(alert=alert).order_by("at")[:200]:
        text = f"Remediation {run.get_state_display().lower()}"
        if run.reason:
            text += f": {run.reason}"
        entries.append(Entry(run.at, "remediation", text, {"command_id": str(run.command_id) if run.command_id else "",
                                                            "state": run.state}))
    entries.sort(key=lambda e: e.at)
    return entries


def notifications(alert: Alert) -> list[Notification]:
    return list(alert.notifications.order_by("-created_at")[:50])


def device_alerts(device_id, limit: int = 10) -> list[Alert]:
    """A device's open alerts first, then its latest resolved ones."""
    qs = Alert.objects.filter(subject_type=Alert.Subject.DEVICE, subject_id=str(device_id)).select_related("rule")
    open_ = list(qs.filter(state__in=Alert.OPEN_STATES).order_by("-since")[:limit])
    resolved = list(qs.filter(state=Alert.State.RESOLVED).order_by("-resolved_at")[:max(0, limit - len(open_))])
    return open_ + resolved


def rules_with_open_counts(rules):
    return rules.annotate(open_alerts=Count("alerts", filter=Q(alerts__state=Alert.State.FIRING)))
