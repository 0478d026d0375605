"""The devices console: list (search, filters, sort, paging, bulk delete), detail (status, history
charts, inventory, enrollment, edit), retired devices and groups. One view renders the full page
or its partial (request.htmx); live cells arrive over the WebSocket from devices.services."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required, write_requires
from devices import charts, compliance, services, writebehind
from devices.filters import DeviceFilter
from devices.forms import DeviceEditForm, GroupForm
from devices.models import Device, DeviceGroup, HeartbeatSample, Tag
from devices.selectors import fleet_summary
from mdm.audit import client_ip
from mdm.models import FleetSettings

PAGE_SIZE = 50
SORTS = [
    ("hardware_id", "Hardware id"),
    ("alias", "Alias"),
    ("-last_seen", "Last seen (newest)"),
    ("last_seen", "Last seen (oldest)"),
    ("battery", "Battery (lowest)"),
    ("-battery", "Battery (highest)"),
    ("model", "Model"),
    ("android_version", "Android version"),
    ("group", "Group"),
]
SEEN_CHOICES = [("", "Any time"), ("300", "Last 5 min"), ("3600", "Last hour"), ("86400", "Last day")]
COMPLIANCE_CHOICES = [("", "Any policy state"), ("true", "Compliant"), ("false", "Not compliant")]
PATCH_CHOICES = [("", "Any patch level"), ("30", "Patch older than 30 days"), ("90", "Patch older than 90 days"),
                 ("180", "Patch older than 180 days"), ("365", "Patch older than a year")]
CHART_HOURS = (1, 6, 24, 72, 168)


def _get_device_for_user(request, device_id) -> Device:
    try:
        return Device.objects.for_user(request.user).select_related("status", "group").get(pk=device_id)
    except (Device.DoesNotExist, ValueError):
        raise Http404("No such device.") from None


def _device_page(request):
    queryset = Device.objects.for_user(request.user).select_related("status", "group", "policy_state").prefetch_related("tags")
    params = request.GET.copy()
    params.setdefault("sort", "hardware_id")
    devices = DeviceFilter(params, queryset=queryset)
    page = Paginator(devices.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    writebehind.overlay([getattr(d, "status", None) for d in page])  # read-your-writes: one MGET for the page
    query = {k: v for k, v in params.items() if k != "page" and v}
    return devices, page, urlencode(query)


@require_GET
@login_required
def index(request):
    devices, page, query = _device_page(request)
    context = {
        "section": "devices",
        "filter": devices,
        "page": page,
        "query": query,
        "sorts": SORTS,
        "seen_choices": SEEN_CHOICES,
        "groups": DeviceGroup.objects.all(),
        "tags": Tag.objects.all(),
        "android_versions": Device.objects.active().exclude(android_version="").order_by("android_version")
        .values_list("android_version", flat=True).distinct(),
        "os_versions": Device.objects.for_user(request.user).exclude(status__os_version="").order_by("status__os_version")
        .values_list("status__os_version", flat=True).distinct(),
        "compliance_choices": COMPLIANCE_CHOICES,
        "patch_choices": PATCH_CHOICES,
        "params": request.GET,
        "summary": fleet_summary(request.user),
        "compliance": compliance.compliance_counts(Device.objects.for_user(request.user)),
    }
    template = "devices/_device_table.html" if request.htmx and not request.htmx.boosted else "devices/device_list.html"
    return render(request, template, context)


@require_POST
@role_required("admin")
def bulk_delete(request):
    ids = request.POST.getlist("device_ids")
    try:
        deleted = services.delete_devices(actor=request.user, device_ids=ids, ip=client_ip(request))
    except Exception:  # malformed ids (not UUIDs)
        return HttpResponse("Invalid selection.", status=400)
    messages.success(request, f"Deleted {len(deleted)} device{'s' if len(deleted) != 1 else ''}. Their data is purged in the background.")
    response = HttpResponse(status=204)
    response["HX-Redirect"] = request.POST.get("next") or reverse("devices:index")
    return response


@write_requires("operator")
def detail(request, device_id):
    device = _get_device_for_user(request, device_id)
    if request.method == "POST":
        form = DeviceEditForm(request.POST)
        if form.is_valid():
            device = services.update_device(
                actor=request.user,
                device=device,
                alias=form.cleaned_data["alias"],
                group=form.cleaned_data["group"],
                tag_names=form.cleaned_data["tags"],
                ip=client_ip(request),
            )
            device = _get_device_for_user(request, device.pk)
            return render(request, "devices/_device_edit.html", {"device": device, "form": _edit_form(device), "saved": True})
        return render(request, "devices/_device_edit.html", {"device": device, "form": form}, status=422)
    hours = _hours(request)
    writebehind.overlay([getattr(device, "status", None)])  # what it sent a moment ago, before the flush
    context = {
        "section": "devices",
        "device": device,
        "status": device.status,
        "fleet": FleetSettings.current(),
        "form": _edit_form(device),
        "charts": _charts(device, hours),
        "hours": hours,
        "chart_hours": CHART_HOURS,
        "apps": device.apps.all(),
        "pending_update": _pending_update(device.status),
    }
    if request.htmx and request.htmx.target == "device-charts":
        return render(request, "devices/_device_charts.html", context)
    return render(request, "devices/device_detail.html", context)


def _pending_update(status) -> dict | None:
    """The v1.1 heartbeat's `pending_system_update` ({"received_at": unix s, "security_patch"})
    for the page, or None when no OS update is waiting."""
    value = status.pending_system_update
    if not isinstance(value, dict):
        return None
    received = value.get("received_at")
    try:
        received = datetime.fromtimestamp(int(received), tz=dt_timezone.utc) if received is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        received = None
    return {"received_at": received, "security_patch": value.get("security_patch") or ""}


def _edit_form(device) -> DeviceEditForm:
    return DeviceEditForm(
        initial={"alias": device.alias, "group": device.group, "tags": ", ".join(t.name for t in device.tags.all())}
    )


def _hours(request) -> int:
    try:
        hours = int(request.GET.get("hours", 24))
    except ValueError:
        return 24
    return hours if hours in CHART_HOURS else 24


def _charts(device, hours: int) -> dict:
    end = timezone.now()
    start = end - timedelta(hours=hours)
    rows = list(
        HeartbeatSample.objects.filter(device_id=device.pk, at__gte=start)
        .order_by("at")
        .values_list("at", "battery_pct", "mem_avail_mb")
    )
    mem_total = device.status.mem_total_mb or max((r[2] or 0 for r in rows), default=0) or 1
    battery = charts.Series([(at, b) for at, b, _ in rows], "Battery %", "%", 100, "#059669")
    memory = charts.Series(
        [(at, mem_total - m if m is not None else None) for at, _, m in rows], "Memory used (MB)", "MB", mem_total, "#7c3aed"
    )
    return {
        "battery": charts.line_chart(battery, start=start, end=end),
        "memory": charts.line_chart(memory, start=start, end=end),
        "samples": len(rows),
        "mem_total": mem_total,
    }


@require_POST
@role_required("admin")
def delete(request, device_id):
    device = _get_device_for_user(request, device_id)
    services.delete_devices(actor=request.user, device_ids=[device.pk], ip=client_ip(request))
    messages.success(request, f"Deleted {device.display_name}. Its hardware id is retired until restored.")
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("devices:index")
    return response


@role_required("admin")
def retired(request):
    devices = Device.objects.filter(deleted_at__isnull=False).order_by("-deleted_at")
    page = Paginator(devices, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "devices/retired.html", {"section": "devices", "page": page})


@require_POST
@role_required("admin")
def restore(request, device_id):
    device = get_object_or_404(Device, pk=device_id, deleted_at__isnull=False)
    services.restore_device(actor=request.user, device=device, ip=client_ip(request))
    # display_name is an operator-set alias (or device-reported model): escaped, it reaches an admin's session.
    return HttpResponse(format_html('<td colspan="6">{} restored: it can enroll again.</td>', device.display_name))


@write_requires("operator")
def groups(request):
    form = GroupForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            services.create_group(actor=request.user, ip=client_ip(request), **form.cleaned_data)
            return _to_page(request, reverse("devices:groups"))
        if request.htmx:
            return render(request, "devices/_group_form.html", {"form": form}, status=422)
    from django.db.models import Count, Q

    rows = DeviceGroup.objects.annotate(n=Count("devices", filter=Q(devices__deleted_at__isnull=True)))
    return render(request, "devices/groups.html", {"section": "devices", "groups": rows, "form": form},
                  status=422 if form.errors else 200)


def _to_page(request, url: str) -> HttpResponse:
    """After a form is saved: the page again (HX-Redirect for HTMX, a redirect otherwise)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
