import json
import shlex

from django import template

from commands.forms import LABELS
from commands.progress import Progress

register = template.Library()


@register.simple_tag
def progress_of(counters: dict, command=None) -> Progress:
    """`{% progress_of counters command as p %}`: the counts split for the bar and the status.
    Without the command (a page that has only its counters, as a rollout's) the total is what the
    counters hold."""
    if not command:
        return Progress.of(counters)
    return Progress.of(counters, target_count=command.target_count, cancelled=command.cancelled_at is not None)


@register.filter
def params_text(params) -> str:
    """A command's params in words ("Package: com.example.app · Activity: .Main"), a command line
    as one would type it, never a Python dict or list."""
    if not params:
        return "none"
    parts = []
    for name, value in params.items():
        if isinstance(value, list):
            value = shlex.join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{LABELS.get(name) or name.replace('_', ' ').capitalize()}: {value}")
    return " · ".join(parts)


@register.filter
def params_json(params) -> str:
    """A preset's params as the preset form takes them (JSON)."""
    return json.dumps(params or {}, ensure_ascii=False)
