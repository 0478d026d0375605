from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from enrollment.models import ReenrollRequest

register = template.Library()


@register.filter
def key_state(key) -> str:
    return key.state(timezone.now())


@register.filter
def reenroll_state(request) -> str:
    return request.effective_state(timezone.now())


@register.inclusion_tag("enrollment/_device_reenroll_requests.html", takes_context=True)
def device_reenroll_requests(context, device):
    """The device page's section of its open re-enrollment requests (pending, or approved and not
    yet used): a template tag, so the devices app needs no import of enrollment's models."""
    requests = ReenrollRequest.objects.open(timezone.now()).filter(device=device).select_related("device")
    return {"device": device, "requests": list(requests), "user": context.get("user")}


# The console's policy pages (commands/): the names they may be served under, first found wins.
# Guarded: a console without them names the API instead (/api/v1/policies).
POLICY_PAGES = ("commands:policies", "commands:policy_list", "policies:index")
POLICY_PAGE = ("commands:policy_detail", "policies:detail")


def _first(names, *args) -> str:
    for name in names:
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return ""


@register.simple_tag
def policies_url() -> str:
    return _first(POLICY_PAGES)


@register.simple_tag
def policy_url(policy) -> str:
    return _first(POLICY_PAGE, policy.pk)
