"""State changes of alerting (docs/alerts.md): the evaluation cycle, rules, acknowledge and
snooze, webhooks and maintenance windows. Each is atomic and audited; side effects (sending,
live updates) run on commit."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from commands import crypto, targeting
from commands.params import ParamsError
from mdm import audit, realtime
from mdm.alerts import evaluate, notify
from mdm.alerts.kinds import KINDS, clean_params
from mdm.alerts.models import Alert, AlertEvent, AlertRule, MaintenanceWindow, Severity, WebhookEndpoint

MAX_SNOOZE = timedelta(days=30)
# Remediation registers here (mdm.alerts.remediation) so the cycle can call it without this module
# knowing its guardrails: callable(outcomes, now) -> None.
after_evaluation: list = []


def run_cycle(now: datetime | None = None, *, kinds=None) -> dict:
    """One evaluation of every enabled rule, then what fired or resolved grouped for sending.
    Returns counts for the task's log and the benchmark."""
    now = now or timezone.now()
    outcomes = evaluate.evaluate_all(now, kinds=kinds)
    changed = [o for o in outcomes if o]
    if changed:
        notify.collect(changed, now)
    for hook in after_evaluation:  # every cycle: remediation follows its runs' results here
        hook(changed, now)
    if any(o.fired or o.resolved for o in changed):
        transaction.on_commit(lambda: realtime.broadcast("alerts", ""))
    return {"rules": len(outcomes), "fired": sum(len(o.fired) for o in changed),
            "resolved": sum(len(o.resolved) for o in changed), "opened": sum(o.opened for o in changed)}


# --- rules ---------------------------------------------------------------------------------------


def _clean_rule(data: dict, *, existing: AlertRule | None = None) -> dict:
    errors = {}
    kind_key = data.get("kind", existing.kind if existing else None)
    kind = KINDS.get(kind_key)
    if kind is None:
        raise ParamsError({"kind": [f"One of: {', '.join(KINDS)}."]})
    out = {"kind": kind_key}
    if "params" in data or existing is None:
        out["params"] = clean_params(kind, data.get("params"))
    if "scope" in data:
        scope = data["scope"] or {"all": True}
        if kind.subject != Alert.Subject.DEVICE and scope != {"all": True}:
            errors["scope"] = [f"{kind.label} is not about devices: its scope is everything."]
        else:
            try:
                out["scope"] = targeting.normalize(scope)
                if "device_ids" in out["scope"]:
                    errors["scope"] = ["A scope is all devices, a group, tags or a filter."]
            except ParamsError as exc:
                errors["scope"] = exc.errors.get("target", ["Invalid scope."])
    for name, top in (("hold_s", 7 * 86400), ("clear_s", 7 * 86400)):
        if name in data:
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
                errors[name] = [f"Seconds, from 0 to {top}."]
            else:
                out[name] = v
    if "severity" in data:
        if data["severity"] not in Severity.values:
            errors["severity"] = [f"One of: {', '.join(Severity.values)}."]
        else:
            out["severity"] = data["severity"]
    for name in ("enabled", "quiet", "remediation_dry_run"):
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = ["true or false."]
            else:
                out[name] = data[name]
    if "name" in data:
        name = str(data["name"]).strip()
        if not name or len(name) > 120:
            errors["name"] = ["A name of 1 to 120 characters."]
        else:
            out["name"] = name
    if "notify" in data:
        out["notify"] = _clean_notify(data["notify"], errors)
    if "remediation" in data:
        out["remediation"] = data["remediation"] or {}  # checked by remediation.clean when it is installed
        for check in remediation_checks:
            check(out["remediation"], errors)
    if errors:
        raise ParamsError(errors)
    return out


remediation_checks: list = []


def _clean_notify(raw, errors) -> dict:
    if not isinstance(raw, dict):
        errors["notify"] = ["An object: admins, users, emails, webhooks."]
        return {}
    out = {"admins": bool(raw.get("admins", False))}
    for name in ("users", "emails", "webhooks"):
        values = raw.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and 0 < len(v) <= 254 for v in values) or len(values) > 100:
            errors[f"notify.{name}"] = ["A list of at most 100 strings."]
        else:
            out[name] = sorted(set(values))
    from django.core.validators import validate_email
    from django.core.exceptions import ValidationError
    for e in out.get("emails", []):
        try:
            validate_email(e)
        except ValidationError:
            errors["notify.emails"] = [f"Not an e-mail address: {e}"]
    return out


def create_rule(*, actor, data: dict, ip=None) -> AlertRule:
    cleaned = _clean_rule(data)
    if "name" not in cleaned:
        raise ParamsError({"name": ["A name of 1 to 120 characters."]})
    kind = KINDS[cleaned["kind"]]
    defaults = {"severity": kind.severity, "hold_s": kind.hold_s, "clear_s": kind.clear_s, "scope": {"all": True},
                "notify": {"admins": True}}
    with transaction.atomic():
        if AlertRule.objects.filter(name=cleaned["name"]).exists():
            raise ParamsError({"name": ["A rule with this name exists."]})
        rule = AlertRule.objects.create(**{**defaults, **cleaned})
        audit.record(actor=actor, action="alert_rule.create", target=rule, data=_audit_view(rule), ip=ip)
    return rule


def update_rule(*, actor, rule: AlertRule, data: dict, ip=None) -> AlertRule:
    cleaned = _clean_rule(data, existing=rule)
    cleaned.pop("kind")
    if "kind" in data and data["kind"] != rule.kind:
        raise ParamsError({"kind": ["The kind of a rule cannot change: create another rule."]})
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
        if "name" in cleaned and AlertRule.objects.filter(name=cleaned["name"]).exclude(pk=rule.pk).exists():
            raise ParamsError({"name": ["A rule with this name exists."]})
        before = _audit_view(rule)
        for k, v in cleaned.items():
            setattr(rule, k, v)
        rule.save(update_fields=[*cleaned, "updated_at"])
        if cleaned.get("enabled") is False:
            _close_open_alerts(rule, timezone.now(), "rule disabled")
        audit.record(actor=actor, action="alert_rule.update", target=rule,
                     data={"before": before, "after": _audit_view(rule)}, ip=ip)
    return rule


def delete_rule(*, actor, rule: AlertRule, ip=None) -> None:
    with transaction.atomic():
        audit.record(actor=actor, action="alert_rule.delete", target=rule, data=_audit_view(rule), ip=ip)
        rule.delete()


def _close_open_alerts(rule, now, reason):
    ids = list(Alert.objects.filter(rule=rule, state__in=Alert.OPEN_STATES).values_list("pk", flat=True))
    Alert.objects.filter(pk__in=ids, fire_count=0).delete()
    Alert.objects.filter(pk__in=ids).update(state=Alert.State.RESOLVED, resolved_at=now, clear_since=None)
    AlertEvent.objects.bulk_create([AlertEvent(alert_id=i, at=now, kind="resolved", detail={"reason": reason})
                                    for i in Alert.objects.filter(pk__in=ids).values_list("pk", flat=True)])


def _audit_view(rule: AlertRule) -> dict:
    return {"name": rule.name, "kind": rule.kind, "enabled": rule.enabled, "severity": rule.severity,
            "params": rule.params, "scope": rule.scope, "hold_s": rule.hold_s, "clear_s": rule.clear_s,
            "notify": rule.notify, "remediation": rule.remediation, "remediation_dry_run": rule.remediation_dry_run,
            "quiet": rule.quiet}


# --- alerts --------------------------------------------------------------------------------------


def acknowledge(*, actor, alert: Alert, ip=None) -> Alert:
    now = timezone.now()
    with transaction.atomic():
        if not Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(acknowledged_at=now, acknowledged_by=actor):
            return Alert.objects.get(pk=alert.pk)
        AlertEvent.objects.create(alert=alert, at=now, kind="acknowledged", detail={"by": audit.actor_label(actor)})
        audit.record(actor=actor, action="alert.acknowledge", target=alert, data={"rule": alert.rule.name,
                     "subject": alert.subject_label}, ip=ip)
        transaction.on_commit(lambda: realtime.broadcast("alerts", ""))
    return Alert.objects.get(pk=alert.pk)


def snooze(*, actor, alert: Alert, minutes: int, ip=None) -> Alert:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_SNOOZE.total_seconds() // 60:
        raise ParamsError({"minutes": [f"Minutes, from 1 to {int(MAX_SNOOZE.total_seconds() // 60)} (30 days)."]})
    now = timezone.now()
    until = now + timedelta(minutes=minutes)
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(snoozed_until=until)
        AlertEvent.objects.create(alert=alert, at=now, kind="snoozed", detail={"by": audit.actor_label(actor),
                                  "until": until.isoformat()})
        audit.record(actor=actor, action="alert.snooze", target=alert, data={"minutes": minutes}, ip=ip)
        transaction.on_commit(lambda: realtime.broadcast("alerts", ""))
    return Alert.objects.get(pk=alert.pk)


# --- webhooks and maintenance windows ------------------------------------------------------------


def create_webhook(*, actor, name: str, url: str, secret: str, all_rules: bool = False, ip=None) -> WebhookEndpoint:
    with transaction.atomic():
        hook = WebhookEndpoint.objects.create(name=name, url=url, secret=crypto.encrypt_bytes(secret.encode()),
                                              all_rules=all_rules)
        audit.record(actor=actor, action="webhook.create", target=hook, data={"name": name, "url": url,
                     "all_rules": all_rules}, ip=ip)
    return hook


def create_maintenance_window(*, actor, group, starts_at, ends_at, reason: str = "", ip=None) -> MaintenanceWindow:
    if ends_at <= starts_at:
        raise ParamsError({"ends_at": ["Must be after the start."]})
    with transaction.atomic():
        w = MaintenanceWindow.objects.create(group=group, starts_at=starts_at, ends_at=ends_at, reason=reason[:200],
                                             created_by=actor)
        audit.record(actor=actor, action="maintenance_window.create", target=w, data={
            "group": group.name if group else None, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
            "reason": reason[:200]}, ip=ip)
    return w
