"""The Enrollment console page: keys (created and revoked by admins, shown once), the QR
provisioning builder, the adb one-liner generator and its presets; the script download that the
one-liners fetch (authenticated by the enrollment key itself); and the re-enrollment requests
that admins approve or deny (PROTOCOL.md v1.1)."""

import base64
import json
from urllib.parse import urlencode

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required, write_requires
from enrollment import provisioning
from enrollment.forms import (
    BloatwarePresetForm,
    KeyCreateForm,
    OneLinerForm,
    QrForm,
    TweakPresetForm,
    usable_key,
)
from enrollment.models import REENROLL_LIST_STATES, BloatwarePreset, EnrollmentKey, ReenrollRequest, TweakPreset
from enrollment.services import keys as key_services
from enrollment.services import presets as preset_services
from enrollment.services import reenroll as reenroll_services
from mdm.api import error
from mdm.audit import client_ip
from mdm.models import FleetSettings

PRESETS = {"bloatware": (BloatwarePreset, BloatwarePresetForm), "tweaks": (TweakPreset, TweakPresetForm)}


def _keys():
    return EnrollmentKey.objects.select_related("group", "created_by").prefetch_related("tags")[:200]


@write_requires("admin")
def index(request):
    return render(
        request,
        "enrollment/index.html",
        {
            "section": "enrollment",
            "keys": _keys(),
            "key_form": KeyCreateForm(),
            "qr_form": QrForm(),
            "oneliner_form": OneLinerForm(),
            "bloatware": BloatwarePreset.objects.all(),
            "tweaks": TweakPreset.objects.all(),
        },
    )


@require_POST
@role_required("admin")
def create_key(request):
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return render(request, "enrollment/_key_form.html", {"key_form": form}, status=422)
    data = form.cleaned_data
    new = key_services.create_enrollment_key(
        actor=request.user,
        name=data["name"],
        expires_at=key_services.expires_in_days(data["expires_in_days"]),
        max_uses=data["max_uses"],
        group=data["group"],
        tags=list(data["tags"]),
        ip=client_ip(request),
    )
    return render(request, "enrollment/_key_created.html", {"new": new, "keys": _keys(), "key_form": KeyCreateForm()})


@require_POST
@role_required("admin")
def revoke_key(request, key_id):
    key = get_object_or_404(EnrollmentKey, pk=key_id)
    key_services.revoke_enrollment_key(actor=request.user, key=key, ip=client_ip(request))
    return render(request, "enrollment/_keys.html", {"keys": _keys()})


@require_POST
@role_required("admin")
def build_qr(request):
    form = QrForm(request.POST)
    if not form.is_valid():
        return render(request, "enrollment/_qr_form.html", {"qr_form": form}, status=422)
    payload = provisioning.qr_payload(form.spec())
    svg, png = provisioning.qr_images(payload)
    pretty = json.dumps(payload, indent=2, ensure_ascii=False)
    context = {"qr_form": form, "payload": payload, "payload_text": pretty, "svg": svg, "png": png, "apk": form.apk}
    return render(request, "enrollment/_qr_form.html", context)


@require_POST
@role_required("admin")
def build_oneliner(request):
    form = OneLinerForm(request.POST)
    if not form.is_valid():
        return render(request, "enrollment/_oneliner_form.html", {"oneliner_form": form}, status=422)
    data = form.cleaned_data
    query = urlencode(
        {
            "apk_url": data["apk_url"],
            "bloatware": ",".join(str(p.pk) for p in data["bloatware"]),
            "tweaks": ",".join(str(p.pk) for p in data["tweaks"]),
        }
    )
    base = data["server_url"].rstrip("/")
    sh_url = f"{base}{reverse('enrollment:provision_sh')}?{query}"
    ps_url = f"{base}{reverse('enrollment:provision_ps1')}?{query}"
    key = data["enroll_key"]
    spec = _script_spec(key, data["apk_url"], data["bloatware"], data["tweaks"], base)
    bash, powershell = provisioning.render_script(spec, "bash"), provisioning.render_script(spec, "powershell")
    context = {
        "oneliner_form": form,
        "bash_oneliner": f"curl -fsSL -H 'X-Admin-Key: {key}' '{sh_url}' | bash -s --",
        "ps_oneliner": f"iex ((iwr -UseBasicParsing -Headers @{{'X-Admin-Key'='{key}'}} '{ps_url}').Content)",
        "bash_script": bash,
        "bash_data": base64.b64encode(bash.encode()).decode(),
        "ps_data": base64.b64encode(powershell.encode()).decode(),
    }
    return render(request, "enrollment/_oneliner_form.html", context)


def _script_spec(key, apk_url, bloatware, tweaks, server_url) -> provisioning.ScriptSpec:
    packages = list(dict.fromkeys(p for preset in bloatware for p in preset.packages))
    settings_list = [s for preset in tweaks for s in preset.settings]
    agent = provisioning.agent_apk()  # the marked agent release: its checksum is known
    sha256 = agent.sha256 if agent and agent.url == apk_url else ""
    return provisioning.ScriptSpec(server_url=server_url, enroll_key=key, apk_url=apk_url, packages=packages, settings=settings_list,
                                   apk_sha256=sha256)


@require_GET
def provision_script(request, shell):
    """GET /enrollment/provision.sh|.ps1 with `X-Admin-Key`: the script for that key (what the
    one-liners fetch). The key authenticates; without a usable one, 401 in JSON."""
    raw = request.META.get("HTTP_X_ADMIN_KEY", "")
    if not raw or usable_key(raw) is None:
        return error("Missing or invalid X-Admin-Key.", "key_invalid", 401)
    apk_url = request.GET.get("apk_url", "")
    if not apk_url.startswith(("https://", "http://")):
        return error("apk_url: an http(s) URL is required.", "invalid", 400, fields={"apk_url": ["An http(s) URL is required."]})
    bloatware = BloatwarePreset.objects.filter(pk__in=_ids(request.GET.get("bloatware", "")))
    tweaks = TweakPreset.objects.filter(pk__in=_ids(request.GET.get("tweaks", "")))
    spec = _script_spec(raw.strip(), apk_url, bloatware, tweaks, settings.PUBLIC_BASE_URL)
    try:
        body = provisioning.render_script(spec, shell)
    except ValueError as exc:
        return error(str(exc), "invalid", 400)
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="provision.{"sh" if shell == "bash" else "ps1"}"'
    response["Cache-Control"] = "no-store"
    return response


def _ids(raw: str) -> list[int]:
    # isdigit() alone lets "²" and other Unicode digits through to int(), a ValueError (a 500).
    # A length cap too: int() refuses more than 4,300 digits (a ValueError), and no id has 19.
    return [int(part) for part in raw.split(",") if part.strip().isascii() and part.strip().isdigit() and len(part.strip()) <= 18][:100]


@write_requires("admin")
def preset_edit(request, kind, preset_id=None):
    if kind not in PRESETS:
        raise Http404
    model, form_class = PRESETS[kind]
    preset = get_object_or_404(model, pk=preset_id) if preset_id else None
    if request.method == "POST":
        form = form_class(request.POST)
        if form.is_valid():
            save = preset_services.save_bloatware_preset if kind == "bloatware" else preset_services.save_tweak_preset
            save(actor=request.user, preset=preset, ip=client_ip(request), **form.cleaned_data)
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("enrollment:index") + "#presets"
            return response
    else:
        initial = {}
        if preset is not None:
            initial = {"name": preset.name, "description": preset.description}
            if kind == "bloatware":
                initial["packages"] = "\n".join(preset.packages)
            else:
                initial["settings"] = "\n".join(f"{s['namespace']} {s['key']} {s['value']}" for s in preset.settings)
        form = form_class(initial=initial)
    return render(request, "enrollment/_preset_form.html", {"form": form, "kind": kind, "preset": preset})


@require_POST
@role_required("admin")
def preset_delete(request, kind, preset_id):
    if kind not in PRESETS:
        raise Http404
    preset = get_object_or_404(PRESETS[kind][0], pk=preset_id)
    preset_services.delete_preset(actor=request.user, preset=preset, ip=client_ip(request))
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("enrollment:index") + "#presets"
    return response


# --- Re-enrollment requests (admins) ----------------------------------------------------------

REENROLL_PAGE = 50


def _pending_count() -> int:
    return ReenrollRequest.objects.listed("pending").count()


@require_GET
@role_required("admin")
def reenroll_requests(request):
    state = request.GET.get("state", "pending")
    if state not in REENROLL_LIST_STATES:
        state = "pending"
    page = Paginator(ReenrollRequest.objects.listed(state), REENROLL_PAGE).get_page(request.GET.get("page"))
    context = {"section": "reenroll", "page": page, "state": state, "states": REENROLL_LIST_STATES, "fleet": FleetSettings.current()}
    return render(request, "enrollment/reenroll_requests.html", context)


@require_GET
@role_required("admin")
def reenroll_count(request):
    """The navigation's pending count, loaded by the page after it renders (no query per page)."""
    return render(request, "enrollment/_reenroll_count.html", {"pending": _pending_count()})


@require_POST
@role_required("admin")
def approve_reenroll(request, request_id):
    return _decide(request, request_id, reenroll_services.approve_reenroll_request)


@require_POST
@role_required("admin")
def deny_reenroll(request, request_id):
    return _decide(request, request_id, reenroll_services.deny_reenroll_request)


def _decide(request, request_id, decide):
    """Answers the request's row, and the navigation's count out of band."""
    get_object_or_404(ReenrollRequest, pk=request_id)
    refused, status = None, 200
    try:
        decide(actor=request.user, request_id=request_id, ip=client_ip(request))
    except reenroll_services.ReenrollDecisionRefused as exc:
        refused, status = exc.detail, 409
    row = ReenrollRequest.objects.select_related("device", "decided_by").get(pk=request_id)
    context = {"r": row, "refused": refused, "pending": _pending_count(), "oob": True}
    return render(request, "enrollment/_reenroll_decided.html", context, status=status)
