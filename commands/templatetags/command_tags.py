from django import template

from commands.progress import Progress

register = template.Library()


@register.filter
def progress(counters: dict, command=None) -> Progress:
    """`counters|progress:command`: the counts split for the bar and the status. Without the
    command (a page that has only counters) the total is what the counters hold."""
    if command is None:
        return Progress.of(counters)
    return Progress.of(counters, target_count=command.target_count, cancelled=command.cancelled_at is not None)
