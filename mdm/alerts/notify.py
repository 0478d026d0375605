"""Who is told what, and when (docs/alerts.md "Low noise", "Notifications").

Alerts that fire (or resolve) for the same rule within a group window join one `Notification`
("37 devices in group Lobby offline for 10 min"), sent once the window closes: by e-mail to the
rule's recipients after their preferences, and to its webhooks. Info-severity fires go into the
hourly digest instead. At send time, acknowledged and snoozed alerts and alerts of devices in a
maintenance window drop out; a notification left with no alert, or nobody to tell, is kept as
`suppressed` with its reason, so the console can say why nothing was sent."""

from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from mdm import sql
from mdm.alerts.kinds import KINDS
from mdm.alerts.models import (
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertRule,
    MaintenanceWindow,
    Notification,
    NotificationPreference,
    Severity,
    WebhookEndpoint,
)

N = Notification


def group_wait() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_GROUP_WAIT_S", 10))


def digest_every() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_DIGEST_S", 3600))


def group_quiet() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_GROUP_QUIET_S", 3))


def group_max() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_GROUP_MAX_S", 60))


def _collecting(rule: AlertRule | None, event: str, severity: str, now: datetime, wait: timedelta) -> Notification:
    """The open group for (rule, event), or a new one whose window closes `wait` from now. While
    alerts keep joining, the window stays open until ALERT_GROUP_QUIET_S after the last one (a
    fleet going dark crosses an offline threshold over one heartbeat interval, not at one
    instant), but never past ALERT_GROUP_MAX_S after the first: one message for one event."""
    found = (Notification.objects.select_for_update().filter(rule=rule, event=event, state=N.State.COLLECTING)
             .order_by("created_at").first())
    if found is None:
        found = Notification.objects.create(rule=rule, event=event, severity=severity, created_at=now, send_after=now + wait)
        _send_when_due(found, now)
        return found
    if event != N.Event.DIGEST:
        extended = min(max(found.send_after, now + group_quiet()), found.created_at + group_max())
        if extended != found.send_after:
            found.send_after = extended
            found.save(update_fields=["send_after"])
            _send_when_due(found, now)
    return found


# Set by mdm.alerts.tasks: callable(seconds) that sends what is due after that delay. A group
# goes out when its window closes, not at the next sweep (up to ALERT_SWEEP_S later); the sweep
# still sends whatever a lost task left behind.
send_later = None


def _send_when_due(n: Notification, now: datetime) -> None:
    if send_later is not None and n.event != N.Event.DIGEST:
        delay = max(0.0, (n.send_after - now).total_seconds())
        transaction.on_commit(lambda: send_later(delay))


def _digest_deadline(now: datetime) -> timedelta:
    every = digest_every().total_seconds()
    return timedelta(seconds=every - (now.timestamp() % every))


def collect(outcomes, now: datetime) -> list[Notification]:
    """Add what the evaluation fired and resolved to the groups it belongs to."""
    touched = []
    with transaction.atomic():
        for o in outcomes:
            rule = o.rule
            fired = list(o.fired)
            if fired and rule.quiet and rule.remediation and not rule.remediation_stopped_at:
                fired = []  # "remediate quietly": told only when remediation fails (escalation)
            if fired:
                if rule.severity == Severity.INFO:
                    n = _collecting(None, N.Event.DIGEST, Severity.INFO, now, _digest_deadline(now))
                else:
                    n = _collecting(rule, N.Event.FIRED, rule.severity, now, group_wait())
                _add_alerts(n, fired)
                touched.append(n)
            resolved = [pk for pk in o.resolved]
            if resolved and rule.severity != Severity.INFO:
                # flapping alerts told when they started to flap; their resolves would be noise
                # ... and only those somebody was told of (a fire notification that went out)
                resolved = list(Alert.objects.filter(pk__in=resolved, flapping=False, notifications__event=N.Event.FIRED,
                                                     notifications__state=N.State.SENT)
                                .values_list("pk", flat=True).distinct())
                if resolved:
                    n = _collecting(rule, N.Event.RESOLVED, rule.severity, now, group_wait())
                    _add_alerts(n, resolved)
                    touched.append(n)
    return touched


def _add_alerts(n: Notification, alert_ids) -> None:
    """n.alerts.add() in one statement: add() reads the existing links back first and builds a
    model per link, which a new installation's first cycle (thousands of alerts) pays seconds
    for. An alert already in the group (fired, resolved and fired again in one window) stays once."""
    from django.db import connection

    if connection.vendor != "postgresql":
        n.alerts.add(*alert_ids)
        return
    through = Notification.alerts.through
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {sql.table(through)} (notification_id, alert_id) "
                       "SELECT %s, unnest(%s::uuid[]) ON CONFLICT DO NOTHING", [n.pk, list(alert_ids)])


def escalate(*, rule: AlertRule, alert_ids, now: datetime, reason: str) -> Notification:
    """A remediation failed: tell, even when the rule is quiet."""
    with transaction.atomic():
        n = _collecting(rule, N.Event.ESCALATED, Severity.CRITICAL if rule.severity == Severity.CRITICAL else rule.severity,
                        now, group_wait())
        n.alerts.add(*alert_ids)
        n.detail = {**n.detail, "reason": reason}
        n.save(update_fields=["detail"])
    return n


# --- at send time --------------------------------------------------------------------------------


def in_maintenance(alerts, now: datetime) -> set:
    """The ids of the device alerts whose device's group (or the whole fleet) is in a window."""
    windows = list(MaintenanceWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)
                   .values_list("group__name", flat=True))
    if not windows:
        return set()
    if None in windows:
        return {a.pk for a in alerts if a.subject_type == Alert.Subject.DEVICE}
    names = set(windows)
    return {a.pk for a in alerts if a.subject_type == Alert.Subject.DEVICE and a.group_name in names}


def recipients(rule: AlertRule | None, severity: str) -> list[str]:
    """E-mail addresses told of a notification of this rule (every rule's, for the digest),
    after each user's preferences. Seeded rules tell every admin with an address."""
    User = get_user_model()
    notify = rule.notify if rule is not None else {"admins": True}
    users = User.objects.filter(is_active=True).exclude(email="")
    wanted = Q(pk__in=_uuids([u for u in notify.get("users", []) if isinstance(u, str)]))
    if notify.get("admins"):
        wanted |= Q(role="admin") | Q(is_superuser=True)
    chosen = list(users.filter(wanted))
    prefs = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=chosen).prefetch_related("muted_rules")}
    emails = []
    for user in chosen:
        p = prefs.get(user.pk)
        if p is not None:
            if not p.email_enabled or SEVERITY_RANK[severity] < SEVERITY_RANK[p.min_severity]:
                continue
            if rule is not None and any(r.pk == rule.pk for r in p.muted_rules.all()):
                continue
        emails.append(user.email)
    emails += [e for e in notify.get("emails", []) if isinstance(e, str)]
    emails += list(getattr(settings, "ALERT_EMAILS", []))  # the operators' mailbox: told of everything
    return sorted(set(emails))


def webhooks(rule: AlertRule | None) -> list[WebhookEndpoint]:
    named = [w for w in (rule.notify.get("webhooks", []) if rule is not None else []) if isinstance(w, str)]
    return list(WebhookEndpoint.objects.filter(enabled=True).filter(Q(all_rules=True) | Q(pk__in=_uuids(named))))


def _uuids(values):
    import uuid
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(v))
        except ValueError:
            pass
    return out


def headline(n: Notification, alerts: list[Alert]) -> str:
    """'37 devices in group Lobby: offline for 10 min' - the subject line and the webhook title."""
    if n.event == N.Event.DIGEST:
        return f"Digest: {len(alerts)} low-severity alert{'s' if len(alerts) != 1 else ''}"
    rule = n.rule
    kind = KINDS.get(rule.kind)
    condition = kind.describe(rule.params) if kind else rule.kind
    count = len(alerts)
    subject = alerts[0].subject_type if alerts else Alert.Subject.DEVICE
    noun = {"device": "device", "command": "command", "rollout": "rollout", "server": "server", "rule": "alert rule"}[subject]
    groups = Counter(a.group_name for a in alerts if a.group_name)
    where = f" in group {next(iter(groups))}" if len(groups) == 1 and sum(groups.values()) == count else ""
    who = alerts[0].subject_label if count == 1 else f"{count} {noun}s{where}"
    verb = {N.Event.FIRED: "", N.Event.RESOLVED: "resolved: ", N.Event.ESCALATED: "remediation failed: "}[n.event]
    flapping = " (flapping)" if any(a.flapping for a in alerts) and n.event == N.Event.FIRED else ""
    return f"[{n.severity}] {verb}{who}: {condition}{flapping}"[:300]


def claim_due(now: datetime, limit: int = 100) -> list[Notification]:
    """Notifications whose window closed, claimed for sending (a conditional update each, so two
    workers never send one twice)."""
    due = list(Notification.objects.filter(state=N.State.COLLECTING, send_after__lte=now)
               .order_by("send_after").values_list("pk", flat=True)[:limit])
    claimed = []
    for pk in due:
        if Notification.objects.filter(pk=pk, state=N.State.COLLECTING).update(state=N.State.SENDING):
            claimed.append(pk)
    return list(Notification.objects.filter(pk__in=claimed).select_related("rule"))


def prepare(n: Notification, now: datetime) -> tuple[list[Alert], list[str], list[WebhookEndpoint]]:
    """The alerts still worth telling, the addresses and the webhooks; records `suppressed` with
    the reason when there is nothing to send."""
    alerts = list(n.alerts.select_related("rule").order_by("group_name", "subject_label"))
    reasons = {}
    if n.event in (N.Event.FIRED, N.Event.DIGEST):
        quiet = [a for a in alerts if a.is_quiet(now) or a.state != Alert.State.FIRING]
        if quiet:
            reasons["acknowledged, snoozed or no longer firing"] = len(quiet)
        alerts = [a for a in alerts if a not in quiet]
    maintenance = in_maintenance(alerts, now)
    if maintenance:
        reasons["in a maintenance window"] = len(maintenance)
        alerts = [a for a in alerts if a.pk not in maintenance]
    emails = recipients(n.rule, n.severity) if alerts else []
    hooks = webhooks(n.rule) if alerts else []
    if not alerts or not (emails or hooks):
        if alerts:
            reasons["nobody to tell (no recipients, preferences)"] = len(alerts)
        Notification.objects.filter(pk=n.pk).update(state=N.State.SUPPRESSED, sent_at=now, detail={**n.detail, "suppressed": reasons})
        return [], [], []
    if reasons:  # a sent notification covers exactly the alerts it tells of (a suppressed one keeps them all)
        kept = {a.pk for a in alerts}
        n.alerts.remove(*[pk for pk in n.alerts.values_list("pk", flat=True) if pk not in kept])
    subject = headline(n, alerts)
    Notification.objects.filter(pk=n.pk).update(subject=subject, recipients=emails,
                                                detail={**n.detail, "count": len(alerts), "dropped": reasons})
    n.subject, n.recipients = subject, emails
    AlertEvent.objects.bulk_create([AlertEvent(alert=a, at=now, kind="notified", detail={
        "notification": str(n.pk), "event": n.event, "emails": len(emails), "webhooks": len(hooks)}) for a in alerts])
    return alerts, emails, hooks
