"""The devices console: list (search, filters, sort, paging, bulk delete), detail (status, history
charts, inventory, enrollment, edit), retired devices and groups. One view renders the full page
or its partial (request.htmx); live cells arrive over the WebSocket from devices.services."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required, write_requires
from devices import charts, compliance, services, writebehind
from devices.filters import DeviceFilter
from devices.forms import BulkGroupForm, BulkTagForm, DeviceEditForm, GroupForm, SelectionForm, first_error
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
DEFAULT_HOURS = 24
LIFETIME = "life"


def _get_device_for_user(request, device_id) -> Device:
    try:
        return Device.objects.for_user(request.user).select_related("status", "group").get(pk=device_id)
    except (Device.DoesNotExist, ValueError):
        raise Http404("No such device.") from None


def _device_page(request, params=None):
    """The list's page for `params` (the request's query string unless given: a bulk action
    answers with the list its form was on)."""
    queryset = Device.objects.for_user(request.user).select_related("status", "group", "policy_state").prefetch_related("tags")
    params = (request.GET if params is None else params).copy()
    params.setdefault("sort", "hardware_id")
    devices = DeviceFilter(params, queryset=queryset)
    page = Paginator(devices.qs, PAGE_SIZE).get_page(params.get("page"))
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


# --- Bulk actions on the list's selection (devices.forms.SelectionForm: ticked rows or all matching)


def _bulk_refused(form) -> HttpResponse:
    """The message goes to the bulk bar, in place; the table and its ticks stay as they are."""
    response = HttpResponse(escape(first_error(form)), status=422)
    response["HX-Retarget"] = "#bulk-message"
    response["HX-Reswap"] = "innerHTML"
    return response


def _list_after(request, form, notice: str) -> HttpResponse:
    """The list the bulk form was on, re-read (the rows show their new group and tags), with the
    ticked rows still ticked so the next action can follow."""
    params = QueryDict(form.cleaned_data.get("query") or "")
    devices, page, query = _device_page(request, params)
    selected = set() if form.cleaned_data.get("all_matching") else {str(i) for i in form.cleaned_data["ids"]}
    context = {"page": page, "query": query, "params": params, "notice": notice, "selected": selected,
               "groups": DeviceGroup.objects.all(), "tags": Tag.objects.all()}
    return render(request, "devices/_device_table.html", context)


def _count(n: int) -> str:
    return f"{n} device{'s' if n != 1 else ''}"


@require_POST
@role_required("operator")
def bulk_group(request):
    form = BulkGroupForm(request.POST, user=request.user)
    if not form.is_valid():
        return _bulk_refused(form)
    group = form.cleaned_data["group"]
    moved = services.move_devices(actor=request.user, device_ids=form.cleaned_data["ids"], group=group, ip=client_ip(request))
    where = f"to {group.name}" if group else "out of their group"
    notice = f"Moved {_count(moved)} {where}." if moved else f"Nothing to move: already {where.removeprefix('to ')}."
    return _list_after(request, form, notice)


@require_POST
@role_required("operator")
def bulk_tag(request, op):
    form = BulkTagForm(request.POST, user=request.user)
    if not form.is_valid():
        return _bulk_refused(form)
    names = form.cleaned_data["tag"]
    change = {"add": names} if op == "add" else {"remove": names}
    changed = services.tag_devices(actor=request.user, device_ids=form.cleaned_data["ids"], ip=client_ip(request), **change)
    label = ", ".join(names)
    notice = f"Tagged {_count(changed)} {label}." if op == "add" else f"Took {label} off {_count(changed)}."
    return _list_after(request, form, notice)


@require_POST
@role_required("operator")
def bulk_command(request):
    """To the command composer, targeted at the selection by what the list shows: the ticked
    devices' hardware ids, or the list's filter (the command then reaches the devices that match
    it when it is issued)."""
    form = SelectionForm(request.POST, user=request.user)
    if not form.is_valid():
        return _bulk_refused(form)
    if form.cleaned_data["all_matching"]:
        target = {"target_kind": "filter", **{f"filter_{k}": v for k, v in form.filter_params().items()}}
    else:
        ids = form.cleaned_data["ids"]
        if len(ids) > PAGE_SIZE:
            form.add_error(None, f"Tick at most {PAGE_SIZE} devices, or choose all that match the filter.")
            return _bulk_refused(form)
        hardware_ids = Device.objects.filter(id__in=ids).order_by("hardware_id").values_list("hardware_id", flat=True)
        target = {"target_kind": "device_ids", "device_ids": "\n".join(hardware_ids)}
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("commands:compose") + "?" + urlencode(target)
    return response


@require_POST
@role_required("admin")
def bulk_delete(request):
    form = SelectionForm(request.POST, user=request.user)
    if not form.is_valid():
        return _bulk_refused(form)
    deleted = services.delete_devices(actor=request.user, device_ids=form.cleaned_data["ids"], ip=client_ip(request))
    messages.success(request, f"Deleted {_count(len(deleted))}. Their data is purged in the background.")
    response = HttpResponse(status=204)
    back = urlencode(form.filter_params())  # rebuilt, never the posted text (a header must not carry a newline)
    response["HX-Redirect"] = reverse("devices:index") + (f"?{back}" if back else "")
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
    now = timezone.now()
    hours = _chart_range(request, device, now)
    writebehind.overlay([getattr(device, "status", None)])  # what it sent a moment ago, before the flush
    context = {
        "section": "devices",
        "device": device,
        "status": device.status,
        "fleet": FleetSettings.current(),
        "form": _edit_form(device),
        "charts": _charts(device, hours, now),
        "hours": hours,
        "chart_hours": CHART_HOURS,
        "lifetime": LIFETIME if _lifetime_offered(device, now) else None,
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


def _chart_range(request, device, now) -> int | str:
    """Hours of history to chart, or LIFETIME (since enrollment). Unasked, a device enrolled within
    the default day opens on its lifetime, so two hours of data fill the chart rather than a
    sliver of a day; lifetime is offered while it is within the longest range."""
    raw = request.GET.get("hours")
    if raw is None:
        return LIFETIME if device.enrolled_at > now - timedelta(hours=DEFAULT_HOURS) else DEFAULT_HOURS
    if raw == LIFETIME:
        return LIFETIME if _lifetime_offered(device, now) else DEFAULT_HOURS
    try:
        hours = int(raw)
    except ValueError:
        return DEFAULT_HOURS
    return hours if hours in CHART_HOURS else DEFAULT_HOURS


def _lifetime_offered(device, now) -> bool:
    return device.enrolled_at > now - timedelta(hours=max(CHART_HOURS))


def _charts(device, span: int | str, now) -> dict:
    end = now
    if span == LIFETIME:  # at least an hour wide: a device enrolled a minute ago is not one point
        start = min(device.enrolled_at, end - timedelta(hours=1))
    else:
        start = end - timedelta(hours=span)
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
