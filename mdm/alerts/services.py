"""State changes of alerting (docs/alerts.md): the evaluation cycle, rules, acknowledge and
snooze, webhooks and maintenance windows. Each is atomic and audited; side effects (sending,
live updates) run on commit."""

import secrets
import uuid
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from commands import crypto, targeting
from commands.params import ParamsError
from devices.filters import DeviceFilter
from devices.models import Device
from mdm import audit, text
from mdm.alerts import delivery, evaluate, live, notify
from mdm.alerts.kinds import KINDS, clean_params
from mdm.alerts.models import (
    Alert,
    AlertEvent,
    AlertRule,
    MaintenanceWindow,
    NotificationPreference,
    Severity,
    WebhookDelivery,
    WebhookEndpoint,
)

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
    touched = [pk for o in changed for pk in (*o.fired, *o.resolved)]
    if touched:
        live.alerts_changed_on_commit(touched)
    if look_again_at is not None:
        _schedule_next_changes(outcomes, now)
    return {"rules": len(outcomes), "fired": sum(len(o.fired) for o in changed),
            "resolved": sum(len(o.resolved) for o in changed), "opened": sum(o.opened for o in changed)}


# Set by AlertsConfig.ready (mdm.alerts.tasks.look_again_at): callable(kind, when) that evaluates
# that kind's rules at `when`. None: only the sweep (and the flushes' nudges) evaluate.
look_again_at = None


def _schedule_next_changes(outcomes, now: datetime) -> None:
    """Conditions whose start is known in advance (a device silent for N minutes) are looked at
    the moment the next subject starts matching: a fleet going dark fires within a second of each
    device's threshold, not at the next sweep."""
    from mdm.alerts.kinds import KINDS

    soonest = {}
    for o in outcomes:
        kind = KINDS.get(o.rule.kind)
        if kind is None or kind.next_change is None:
            continue
        when = kind.next_change(o.rule, now)
        if when is not None and (o.rule.kind not in soonest or when < soonest[o.rule.kind]):
            soonest[o.rule.kind] = when
    for kind_key, when in soonest.items():
        look_again_at(kind_key, when)


# --- rules ---------------------------------------------------------------------------------------


def _clean_rule(data: dict, *, existing: AlertRule | None = None) -> dict:
    # PostgreSQL refuses NUL and lone surrogates in text and jsonb: refused here, not as a 500.
    errors = {name: ["Must not contain NUL or a lone surrogate."] for name in ("name", "params", "scope", "notify", "remediation")
              if name in data and not text.clean_deep(data[name])}
    if errors:
        raise ParamsError(errors)
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
                elif "filter" in out["scope"]:
                    # Checked now: a bad filter would otherwise select nothing, silently, at every cycle.
                    fs = DeviceFilter(data=out["scope"]["filter"], queryset=Device.objects.none())
                    if not fs.is_valid():
                        errors["scope"] = [f"filter.{k}: {v[0]}" for k, v in fs.errors.items()]
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
        if not isinstance(out["remediation"], dict):
            errors["remediation"] = ["An object (or {} for none)."]
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
    for e in out.get("emails", []):
        try:
            validate_email(e)
        except ValidationError:
            errors["notify.emails"] = [f"Not an e-mail address: {e}"]
    for name, model in (("users", get_user_model()), ("webhooks", WebhookEndpoint)):
        wanted = out.get(name, [])
        found = {str(pk) for pk in model.objects.filter(pk__in=notify._uuids(wanted)).values_list("pk", flat=True)}
        missing = [v for v in wanted if v not in found]
        if missing:
            errors[f"notify.{name}"] = [f"No such {name[:-1]}: {', '.join(missing[:5])}."]
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
        live.alerts_changed_on_commit()  # its alerts went with it


def _close_open_alerts(rule, now, reason):
    ids = list(Alert.objects.filter(rule=rule, state__in=Alert.OPEN_STATES).values_list("pk", flat=True))
    Alert.objects.filter(pk__in=ids, fire_count=0).delete()
    Alert.objects.filter(pk__in=ids).update(state=Alert.State.RESOLVED, resolved_at=now, clear_since=None)
    AlertEvent.objects.bulk_create([AlertEvent(alert_id=i, at=now, kind="resolved", detail={"reason": reason})
                                    for i in Alert.objects.filter(pk__in=ids).values_list("pk", flat=True)])
    if ids:
        live.alerts_changed_on_commit(ids)


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
        live.alerts_changed_on_commit([alert.pk])
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
        live.alerts_changed_on_commit([alert.pk])
    return Alert.objects.get(pk=alert.pk)


# --- webhooks ------------------------------------------------------------------------------------

SECRET_MIN, SECRET_MAX = 16, 200
_url = URLValidator(schemes=["http", "https"])


def new_webhook_secret() -> str:
    """A secret for an endpoint whose creator gave none (shown to them once)."""
    return "whsec_" + secrets.token_urlsafe(32)


def _clean_webhook(data: dict, *, existing: WebhookEndpoint | None = None) -> dict:
    errors = {name: ["Must not contain NUL or a lone surrogate."] for name in ("name", "url", "secret")
              if isinstance(data.get(name), str) and not text.is_clean(data[name])}
    if errors:
        raise ParamsError(errors)
    out = {}
    if "name" in data:
        name = data["name"].strip() if isinstance(data["name"], str) else ""
        if not name or len(name) > 100:
            errors["name"] = ["A name of 1 to 100 characters."]
        elif WebhookEndpoint.objects.filter(name=name).exclude(pk=getattr(existing, "pk", None)).exists():
            errors["name"] = ["A webhook with this name exists."]
        else:
            out["name"] = name
    if "url" in data:
        url = data["url"].strip() if isinstance(data["url"], str) else ""
        try:
            if len(url) > 500:
                raise ValidationError("too long")
            _url(url)
            out["url"] = url
        except ValidationError:
            errors["url"] = ["An http:// or https:// address of at most 500 characters."]
    if "secret" in data:
        secret = data["secret"]
        if not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX or secret != secret.strip():
            errors["secret"] = [f"From {SECRET_MIN} to {SECRET_MAX} characters, no spaces around it (or leave it empty to "
                                "have one made)."]
        else:
            out["secret"] = crypto.encrypt_bytes(secret.encode())
    for name in ("enabled", "all_rules"):
        if name in data:
            if not isinstance(data[name], bool):
                errors[name] = ["true or false."]
            else:
                out[name] = data[name]
    if errors:
        raise ParamsError(errors)
    return out


def _webhook_view(hook: WebhookEndpoint) -> dict:
    return {"name": hook.name, "url": hook.url, "enabled": hook.enabled, "all_rules": hook.all_rules}


def create_webhook(*, actor, name: str, url: str, secret: str, all_rules: bool = False, enabled: bool = True,
                   ip=None) -> WebhookEndpoint:
    """A new endpoint; `secret` signs its requests (new_webhook_secret() when the caller has none)."""
    cleaned = _clean_webhook({"name": name, "url": url, "secret": secret, "all_rules": all_rules, "enabled": enabled})
    with transaction.atomic():
        hook = WebhookEndpoint.objects.create(**cleaned)
        audit.record(actor=actor, action="webhook.create", target=hook, data=_webhook_view(hook), ip=ip)
    return hook


def update_webhook(*, actor, hook: WebhookEndpoint, data: dict, ip=None) -> WebhookEndpoint:
    """name, url, enabled, all_rules and (a rotation) secret; the secret is never recorded."""
    cleaned = _clean_webhook({k: v for k, v in data.items() if k in ("name", "url", "secret", "enabled", "all_rules")},
                             existing=hook)
    with transaction.atomic():
        hook = WebhookEndpoint.objects.select_for_update().get(pk=hook.pk)
        before = _webhook_view(hook)
        for k, v in cleaned.items():
            setattr(hook, k, v)
        if cleaned:
            hook.save(update_fields=list(cleaned))
        audit.record(actor=actor, action="webhook.update", target=hook, data={
            "before": before, "after": _webhook_view(hook), "secret_rotated": "secret" in cleaned}, ip=ip)
    return hook


def delete_webhook(*, actor, hook: WebhookEndpoint, ip=None) -> None:
    """The endpoint and its delivery log go, and the rules that named it no longer do."""
    with transaction.atomic():
        audit.record(actor=actor, action="webhook.delete", target=hook, data=_webhook_view(hook), ip=ip)
        # Rules naming it forget it (a handful of rows: read in Python, portable to SQLite's JSON).
        for rule in AlertRule.objects.select_for_update().filter(notify__has_key="webhooks"):
            if str(hook.pk) in rule.notify["webhooks"]:
                rule.notify = {**rule.notify, "webhooks": [w for w in rule.notify["webhooks"] if w != str(hook.pk)]}
                rule.save(update_fields=["notify", "updated_at"])
        hook.delete()


def send_test_webhook(*, actor, hook: WebhookEndpoint, ip=None) -> WebhookDelivery:
    """One signed test call to the endpoint (enabled or not), in its delivery log like any other."""
    from mdm.alerts import tasks

    with transaction.atomic():
        (d,) = delivery.queue_webhooks(None, [hook], delivery.test_payload(hook), timezone.now(), is_test=True)
        audit.record(actor=actor, action="webhook.test", target=hook, data={"name": hook.name}, ip=ip)
        transaction.on_commit(lambda: tasks.deliver_webhook.delay(str(d.pk)))
    return d


# --- maintenance windows -------------------------------------------------------------------------

MAX_WINDOW = timedelta(days=90)


def create_maintenance_window(*, actor, group, starts_at, ends_at, reason: str = "", ip=None) -> MaintenanceWindow:
    if ends_at <= starts_at:
        raise ParamsError({"ends_at": ["Must be after the start."]})
    if ends_at <= timezone.now():
        raise ParamsError({"ends_at": ["Must be in the future: a window that is over holds nothing back."]})
    if ends_at - starts_at > MAX_WINDOW:
        raise ParamsError({"ends_at": [f"At most {MAX_WINDOW.days} days after the start."]})
    reason = (reason or "").strip()
    if len(reason) > 200 or not text.is_clean(reason):
        raise ParamsError({"reason": ["At most 200 characters, without NUL or a lone surrogate."]})
    with transaction.atomic():
        w = MaintenanceWindow.objects.create(group=group, starts_at=starts_at, ends_at=ends_at, reason=reason,
                                             created_by=actor)
        audit.record(actor=actor, action="maintenance_window.create", target=w, data=_window_view(w), ip=ip)
    return w


def delete_maintenance_window(*, actor, window: MaintenanceWindow, ip=None) -> None:
    """Ends (or cancels) the window: notifications held back for it go out again from the next send."""
    with transaction.atomic():
        audit.record(actor=actor, action="maintenance_window.delete", target=window, data=_window_view(window), ip=ip)
        window.delete()


def _window_view(w: MaintenanceWindow) -> dict:
    return {"group": w.group.name if w.group else None, "starts_at": w.starts_at.isoformat(),
            "ends_at": w.ends_at.isoformat(), "reason": w.reason}


# --- preferences ---------------------------------------------------------------------------------


def set_alert_preferences(*, actor, email_enabled: bool | None = None, min_severity: str | None = None,
                          muted_rules: list | None = None, ip=None) -> NotificationPreference:
    """The signed-in user's own choice of what reaches them by e-mail (None: unchanged)."""
    errors = {}
    if email_enabled is not None and not isinstance(email_enabled, bool):
        errors["email_enabled"] = ["true or false."]
    if min_severity is not None and min_severity not in Severity.values:
        errors["min_severity"] = [f"One of: {', '.join(Severity.values)}."]
    rules = None
    if muted_rules is not None:
        ids, bad = [], []
        for value in muted_rules if isinstance(muted_rules, list) else [None]:
            try:
                ids.append(value.pk if isinstance(value, AlertRule) else uuid.UUID(str(value)))
            except ValueError:
                bad.append(str(value))
        rules = list(AlertRule.objects.filter(pk__in=ids))
        missing = sorted({str(i) for i in ids} - {str(r.pk) for r in rules}) + bad
        if not isinstance(muted_rules, list) or len(muted_rules) > 1000:
            errors["muted_rules"] = ["A list of rule ids."]
        elif missing:
            errors["muted_rules"] = [f"No such rule: {', '.join(missing[:5])}."]
    if errors:
        raise ParamsError(errors)
    with transaction.atomic():
        pref, _ = NotificationPreference.objects.select_for_update().get_or_create(user=actor)
        fields = []
        if email_enabled is not None:
            pref.email_enabled = email_enabled
            fields.append("email_enabled")
        if min_severity is not None:
            pref.min_severity = min_severity
            fields.append("min_severity")
        if fields:
            pref.save(update_fields=fields)
        if rules is not None:
            pref.muted_rules.set(rules)
        audit.record(actor=actor, action="alert_preferences.update", target=("user", str(actor.pk)), data={
            "email_enabled": pref.email_enabled, "min_severity": pref.min_severity,
            "muted_rules": sorted(r.name for r in pref.muted_rules.all())}, ip=ip)
    return pref
