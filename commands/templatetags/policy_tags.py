from django import template

from commands import targeting
from commands.params import ParamsError
from commands.policies import display
from commands.policies.models import Policy, PolicyVersion
from devices.models import DevicePolicyState

register = template.Library()


@register.filter
def errors_at(errors: dict, slot: str) -> list:
    """The editor's messages for one field (commands.policies.forms.PolicyEditor.errors)."""
    return (errors or {}).get(slot, [])


@register.filter
def assignment_target(spec) -> str:
    """An audited assignment's target in words ("group shops", "the fleet default")."""
    if isinstance(spec, dict) and spec.get("all") is True:
        return "the fleet default"
    try:
        return targeting.describe(targeting.normalize(spec))
    except ParamsError:
        return ""


@register.inclusion_tag("commands/policies/_device_policy.html", takes_context=True)
def device_policy(context, device):
    """The device page's policy section: which policy and version, what the device reported and,
    item by item, why it is not compliant. A template tag, so that devices/ (below commands/)
    needs no import of the policy models."""
    state = DevicePolicyState.objects.filter(device=device).first()
    if state is None or not state.version:
        return {"state": state, "policy": None, "device": device, "user": context.get("user")}
    policy = Policy.objects.filter(pk=state.policy_id).first()
    version = PolicyVersion.objects.filter(pk=state.version).only("items", "sources").first()
    expected = version.items if version else {}
    current_report = state.applied_version == state.version
    rows = []
    for item in display.describe(expected, version.sources if version else {}):
        reported = state.items.get(item["name"]) if current_report else None
        reported = reported if isinstance(reported, dict) else {}
        rows.append({**item, "state": reported.get("state", "missing" if current_report else "waiting"),
                     "reason": reported.get("reason", "")})
    extra = [(name, v.get("state", "?"), v.get("reason", "")) for name, v in sorted(state.items.items())
             if current_report and name not in expected and isinstance(v, dict)]
    return {"state": state, "policy": policy, "rows": rows, "extra": extra, "current_report": current_report,
            "failing": [r for r in rows if r["state"] != "applied"], "device": device, "user": context.get("user")}
