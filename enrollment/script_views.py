"""What the adb one-liners fetch, authenticated by the enrollment key itself (`X-Admin-Key`):
the provisioning script, and the status the script polls until the device shows up."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_ratelimit.core import get_usage

from enrollment import conf, scripts, selectors
from enrollment.forms import usable_key
from enrollment.models import BloatwarePreset, EnrollmentKey, TweakPreset, hash_key
from mdm import text
from mdm.api import error


@require_GET
def provision_script(request, shell):
    """GET /enrollment/provision.sh|.ps1 with `X-Admin-Key`: the script for that key. Query:
    apk_url, sha256 (hex; the console computes it), bloatware and tweaks (preset ids), kiosk
    (package). Without a usable key, 401 in JSON."""
    raw = request.META.get("HTTP_X_ADMIN_KEY", "")
    if not raw or usable_key(raw) is None:
        return error("Missing or invalid X-Admin-Key.", "key_invalid", 401)
    apk_url = request.GET.get("apk_url", "")
    if not apk_url.startswith(("https://", "http://")):
        return error("apk_url: an http(s) URL is required.", "invalid", 400, fields={"apk_url": ["An http(s) URL is required."]})
    bloatware = BloatwarePreset.objects.filter(pk__in=_ids(request.GET.get("bloatware", "")))
    tweaks = TweakPreset.objects.filter(pk__in=_ids(request.GET.get("tweaks", "")))
    try:
        spec = scripts.spec_for(key=raw.strip(), apk_url=apk_url, bloatware=bloatware, tweaks=tweaks, server_url=settings.PUBLIC_BASE_URL,
                                sha256=request.GET.get("sha256", ""), kiosk_package=request.GET.get("kiosk", "").strip())
        body = scripts.render_script(spec, shell)
    except ValueError as exc:
        return error(str(exc), "invalid", 400)
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="provision.{"sh" if shell == "bash" else "ps1"}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def provision_status(request):
    """GET /enrollment/provision.status?hardware_id=<serial> with `X-Admin-Key`: whether that
    device enrolled with this key and heartbeats (enrollment.selectors.provisioning_status).
    A used-up or expired key still answers (the device may have taken its last use); a revoked or
    unknown one is 401."""
    raw = request.META.get("HTTP_X_ADMIN_KEY", "").strip()
    key = EnrollmentKey.objects.filter(key_hash=hash_key(raw), revoked_at__isnull=True).first() if raw and len(raw) <= 200 else None
    if key is None:
        return error("Missing or invalid X-Admin-Key.", "key_invalid", 401)
    usage = get_usage(request, group="provision_status", key="ip", rate=conf.get("PROVISION_STATUS_RATE_LIMIT"), method="GET", increment=True)
    if usage is not None and usage["should_limit"]:
        return error("Too many status requests from this address.", "rate_limited", 429, {"Retry-After": str(max(1, int(usage["time_left"])))})
    hardware_id = request.GET.get("hardware_id", "")
    problem = text.problem(hardware_id, "hardware_id", max_len=128) if hardware_id.strip() else "hardware_id: required, 1-128 characters."
    if problem is not None:
        return error(problem, "invalid", 400, fields={"hardware_id": [problem]})
    answer = selectors.provisioning_status(key=key, hardware_id=hardware_id, now=timezone.now())
    return JsonResponse(answer, headers={"Cache-Control": "no-store"})


def _ids(raw: str) -> list[int]:
    # isdigit() alone lets "²" and other Unicode digits through to int(), a ValueError (a 500).
    # A length cap too: int() refuses more than 4,300 digits (a ValueError), and no id has 19.
    return [int(part) for part in raw.split(",") if part.strip().isascii() and part.strip().isdigit() and len(part.strip()) <= 18][:100]
