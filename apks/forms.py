"""The console's deploy form, read into the keyword arguments of apks.services.deploy.deploy_release
(the API takes the same as JSON). The target fields are the command composer's
(commands/_target_fields.html, commands.forms.target_from_post)."""

import math

from commands.forms import target_from_post
from commands.params import ParamsError


def _number(raw: str, name: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ParamsError({name: [f"A number from {low:g} to {high:g}."]}) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ParamsError({name: [f"A number from {low:g} to {high:g}."]})
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
    rollout = None
    if post.get("staged"):
        waves = [_wave(w.strip()) for w in post.get("waves", "").split(",") if w.strip()]
        rollout = {"waves": waves,
                   "soak_s": round(_number(post.get("soak_min", "60"), "Soak (minutes)", 0, 43_200) * 60),
                   "threshold_pct": _number(post.get("threshold_pct", "5"), "Failure threshold (%)", 0, 100)}
    expires = post.get("expires_in_min", "").strip()
    return {"target": target_from_post(post), "versions": post.getlist("versions") or None,
            "sdk_check": bool(post.get("sdk_check")), "rollout": rollout,
            "expires_in_s": round(_number(expires, "Expires after (minutes)", 1, 43_200) * 60) if expires else None}
