"""Alerting's words for the console: durations, scopes, a rule's condition."""

from django import template
from django.utils import timezone

from mdm.alerts.kinds import KINDS

register = template.Library()


@register.filter
def seconds_words(seconds) -> str:
    """0 -> 'at once', 90 -> '1 min 30 s', 600 -> '10 min', 5400 -> '1 h 30 min'."""
    try:
        s = int(seconds)
    except (TypeError, ValueError):
        return ""
    if s <= 0:
        return "at once"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


@register.filter
def scope_words(rule) -> str:
    kind = KINDS.get(rule.kind)
    if kind is None or kind.subject != "device":
        return {"command": "every command", "rollout": "every rollout", "server": "the server"}.get(
            getattr(kind, "subject", ""), "")
    scope = rule.scope or {"all": True}
    if "group" in scope:
        return f"group {scope['group']}"
    if "tags" in scope:
        return "tags " + ", ".join(scope["tags"])
    if "filter" in scope:
        return "devices matching a filter"
    return "all devices"


@register.filter
def condition(rule) -> str:
    kind = KINDS.get(rule.kind)
    try:
        return kind.describe(rule.params) if kind else rule.kind
    except (KeyError, TypeError, ValueError):
        return kind.label if kind else rule.kind


@register.filter
def kind_label(rule) -> str:
    kind = KINDS.get(rule.kind)
    return kind.label if kind else rule.kind


@register.filter
def snoozed_until(alert):
    """The end of the alert's snooze while it lasts, else None."""
    until = alert.snoozed_until
    return until if until is not None and until > timezone.now() else None


def _when(value) -> str:
    from django.utils.dateparse import parse_datetime

    parsed = parse_datetime(str(value)) if value else None
    return parsed.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M") if parsed else str(value)


VALUE_WORDS = {
    "device_offline": lambda v: f"last seen {_when(v)}" if v else "never seen",
    "battery_low": lambda v: f"{v}%",
    "storage_low": lambda v: f"{v} MB free",
    "battery_hot": lambda v: f"{v} °C",
    "bad_envelopes": lambda v: f"{v} rejected in all",
    "clock_drift": lambda v: f"{v:+} s" if isinstance(v, (int, float)) else f"{v} s",
    "policy_noncompliant": lambda v: f"policy version {v}",
    "security_patch_old": lambda v: f"patch {v}",
    "command_failure_rate": lambda v: f"{v['failed']} of {v['results']} failed",
    "server_dead_letters": lambda v: f"{v} set aside",
    "server_push_failures": lambda v: f"{v} failed",
    "server_queue_depth": lambda v: f"{v} waiting",
    "server_worker_silent": lambda v: f"silent {seconds_words(v)}" if v is not None else "never heard from",
}


@register.filter
def value_words(alert) -> str:
    """What the condition saw last, in the user's terms ("5%", "last seen 2026-12-04 11:49")."""
    value = alert.value
    if value is None and alert.rule.kind != "server_worker_silent":
        return ""
    try:
        return VALUE_WORDS.get(alert.rule.kind, str)(value)
    except (KeyError, TypeError, ValueError):
        return str(value)
