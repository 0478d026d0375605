"""The console's deploy form, read into the keyword arguments of apks.services.deploy.deploy_release
(the API takes the same as JSON). The target fields are the command composer's
(commands/_target_fields.html, commands.forms.target_from_post)."""

import math

from commands.forms import target_from_post
from commands.params import ParamsError
from mdm.formfields import range_message


def _number(raw: str, name: str, low: float, high: float, unit: str, note: str = "") -> float:
    message = range_message(low, high, unit=unit, integer=False, note=note)
    try:
        value = float(raw)
    except ValueError:
        raise ParamsError({name: [message]}) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ParamsError({name: [message]})
    return value


def _wave(item: str):
    """"10" or "10%" is a percentage; anything else names a group."""
    bare = item.rstrip("%").strip()
    try:
        value = float(bare)
    except ValueError:
        return item
    return int(value) if value.is_integer() else value


def deploy_request(post) -> dict:
    """Raises ParamsError named after the form's fields (soak_min, threshold_pct, expires_in_min)."""
    rollout = None
    if post.get("staged"):
        waves = [_wave(w.strip()) for w in post.get("waves", "").split(",") if w.strip()]
        rollout = {"waves": waves,
                   "soak_s": round(_number(post.get("soak_min", "60"), "soak_min", 0, 43_200, "minutes", "30 days") * 60),
                   "threshold_pct": _number(post.get("threshold_pct", "5"), "threshold_pct", 0, 100, "%")}
    expires = post.get("expires_in_min", "").strip()
    return {"target": target_from_post(post), "versions": post.getlist("versions") or None,
            "sdk_check": bool(post.get("sdk_check")), "rollout": rollout,
            "expires_in_s": round(_number(expires, "expires_in_min", 1, 43_200, "minutes", "30 days") * 60) if expires else None}


# The deploy form's fields that have an error slot beside them (templates/apks/_deploy_form.html),
# and the API names deploy.normalize_plan puts in front of its messages about them.
DEPLOY_FIELDS = ("versions", "waves", "soak_min", "threshold_pct")
_PLAN_NAMES = {"waves: ": "waves", "soak_s: ": "soak_min", "threshold_pct: ": "threshold_pct"}


def deploy_errors(errors: dict) -> tuple[dict, list]:
    """A ParamsError's messages for the console: ({field: [messages]} for those about a field of
    the form, [the others]), each without the API's field name in front."""
    fields, others = {}, []
    for name, messages in errors.items():
        for message in messages if isinstance(messages, list) else [messages]:
            message, field = str(message), name if name in DEPLOY_FIELDS else None
            for prefix, slot in _PLAN_NAMES.items():
                if name == "rollout" and message.startswith(prefix):
                    field, message = slot, message[len(prefix)].upper() + message[len(prefix) + 1:]
            if field:
                fields.setdefault(field, []).append(message)
            elif message not in others:
                others.append(message)
    return fields, others
