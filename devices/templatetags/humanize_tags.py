from django import template

register = template.Library()


@register.filter
def mb(value):
    if value is None:
        return "?"
    return f"{value / 1024:.1f} GB" if value >= 1024 else f"{value} MB"


@register.filter
def absval(value):
    return abs(value) if value is not None else value


@register.filter
def signed(value):
    return f"{value:+d}" if isinstance(value, int) else value


@register.filter
def duration(seconds):
    if seconds is None:
        return ""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@register.filter
def ago(value):
    """Short relative time: "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"."""
    from django.utils import timezone

    if value is None:
        return "never"
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"
