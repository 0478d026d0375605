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
