from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def key_state(key) -> str:
    return key.state(timezone.now())
