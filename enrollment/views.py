"""The Enrollment console page: keys (created and revoked by admins, shown once), the QR
provisioning builder, the adb one-liner generator and its presets, and the re-enrollment requests
that admins approve or deny (PROTOCOL.md v1.1). What the one-liners fetch is in script_views."""

import base64
import json
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required, write_requires
from enrollment import provisioning, scripts, selectors
from enrollment.forms import (
    BloatwarePresetForm,
    KeyCreateForm,
    OneLinerForm,
    QrForm,
    TweakPresetForm,
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
            "kiosk_packages": selectors.kiosk_packages() if request.user.is_admin_role else [],
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
    context = {"new": new, "new_info": selectors.lookup_key(new.raw, now=timezone.now()), "keys": _keys(), "key_form": KeyCreateForm()}
    return render(request, "enrollment/_key_created.html", context)


@require_POST
@role_required("admin")
def revoke_key(request, key_id):
    key = get_object_or_404(EnrollmentKey, pk=key_id)
    key_services.revoke_enrollment_key(actor=request.user, key=key, ip=client_ip(request))
    return render(request, "enrollment/_keys.html", {"keys": _keys()})


KEY_INFO_FORMS = ("qr", "oneliner")


@require_POST
@role_required("admin")
def key_info(request, form):
    """What the key typed into the QR builder (`qr`) or the one-liner (`oneliner`) is: its name,
    state and pins, and the policy devices enrolled with it get. A POST, so that the key stays out
    of URLs and access logs; it writes nothing."""
    if form not in KEY_INFO_FORMS:
        raise Http404("No such form.")
    info = selectors.lookup_key(request.POST.get("enroll_key", ""), now=timezone.now())
    return render(request, "enrollment/_key_info.html", {"prefix": form, "info": info})


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
    query = {"apk_url": data["apk_url"], "sha256": form.sha256,
             "bloatware": ",".join(str(p.pk) for p in data["bloatware"]), "tweaks": ",".join(str(p.pk) for p in data["tweaks"])}
    if data["kiosk_package"]:
        query["kiosk"] = data["kiosk_package"]
    base = data["server_url"].rstrip("/")
    sh_url = f"{base}{reverse('enrollment:provision_sh')}?{urlencode(query)}"
    ps_url = f"{base}{reverse('enrollment:provision_ps1')}?{urlencode(query)}"
    key = data["enroll_key"]
    spec = scripts.spec_for(key=key, apk_url=data["apk_url"], bloatware=data["bloatware"], tweaks=data["tweaks"], server_url=base,
                            sha256=form.sha256, kiosk_package=data["kiosk_package"])
    bash, powershell = scripts.render_script(spec, "bash"), scripts.render_script(spec, "powershell")
    context = {
        "oneliner_form": form,
        "bash_oneliner": f"curl -fsSL -H 'X-Admin-Key: {key}' '{sh_url}' | bash -s --",
        "ps_oneliner": f"iex ((iwr -UseBasicParsing -Headers @{{'X-Admin-Key'='{key}'}} '{ps_url}').Content)",
        "bash_script": bash,
        "bash_data": base64.b64encode(bash.encode()).decode(),
        "ps_data": base64.b64encode(powershell.encode()).decode(),
    }
    return render(request, "enrollment/_oneliner_form.html", context)


@write_requires("admin")
def preset_edit(request, kind, preset_id=None):
    if kind not in PRESETS:
        raise Http404
    model, form_class = PRESETS[kind]
    preset = get_object_or_404(model, pk=preset_id) if preset_id else None
    if request.method == "POST":
        form = form_class(request.POST, preset=preset)
        if not form.is_valid():
            return render(request, "enrollment/_preset_form.html", {"form": form, "kind": kind, "preset": preset}, status=422)
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
