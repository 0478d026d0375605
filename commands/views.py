"""The console's command pages (HTMX). Each view: fetch through one access helper, validate,
one service call, render (a partial for HTMX requests)."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.permissions import role_required, write_requires
from commands import forms, selectors, services, targeting
from commands.models import Command, CommandType, Preset, ShellAllowRule, WifiConfig
from commands.params import ParamsError
from devices.filters import DeviceFilter
from devices.models import Device, DeviceGroup, Tag
from mdm.audit import client_ip
from mdm.formfields import plain_messages
from mdm.models import FleetSettings

DETAIL_ROWS = 500
SAMPLE = 10


def _get_command(request, command_id) -> Command:
    # Every signed-in user sees every command (devices are not scoped per user yet either).
    return get_object_or_404(Command, pk=command_id)


def _redirect(url: str) -> HttpResponse:
    response = HttpResponse(status=204)
    response["HX-Redirect"] = url
    return response


@require_safe
@login_required
def index(request):
    filterset = selectors.CommandFilter(request.GET or None, queryset=Command.objects.select_related("preset"))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    commands = selectors.attach_counters(page.object_list)
    context = {"section": "commands", "filter": filterset, "commands": commands, "page": page}
    template = "commands/_command_table.html" if request.htmx and not request.htmx.boosted else "commands/index.html"
    return render(request, template, context)


def _composer_context(request) -> dict:
    return {
        "section": "commands",
        "types": [c for c in CommandType.choices],
        "presets": Preset.objects.filter(is_latest=True, archived=False),
        "groups": DeviceGroup.objects.all(),
        "tags": Tag.objects.all(),
        "target_kinds": forms.TARGET_KINDS,
        "filter_form": DeviceFilter().form,
        "default_expiry_min": FleetSettings.current().default_command_expiry_s // 60,
        "selected_preset": request.GET.get("preset", ""),
        "selected_type": request.GET.get("type", "ping"),
        "allow_rules": ShellAllowRule.objects.filter(enabled=True),
        "prefill": forms.target_prefill(request.GET),
    }


@require_safe
@role_required("operator")
def compose(request):
    return render(request, "commands/compose.html", _composer_context(request))


@require_safe
@role_required("operator")
def params_form(request):
    command_type = request.GET.get("type", "ping")
    return render(request, "commands/_params.html", {**_composer_context(request), "selected_type": command_type})


@require_POST
@role_required("operator")
def preview(request):
    try:
        ids = services.preview_command(**forms.composer_request(request.POST))
    except ParamsError as exc:
        return render(request, "commands/_preview.html", {"errors": forms.params_errors(exc)}, status=422)
    sample = Device.objects.filter(pk__in=ids[:SAMPLE]).select_related("status", "group")
    spec = targeting.normalize(forms.target_from_post(request.POST))
    return render(request, "commands/_preview.html", {"count": len(ids), "sample": sample, "target": targeting.describe(spec)})


@require_POST
@role_required("operator")
def issue(request):
    try:
        issued = services.issue_command(actor=request.user, ip=client_ip(request), **forms.composer_request(request.POST))
    except ParamsError as exc:
        return render(request, "commands/_preview.html", {"errors": forms.params_errors(exc)}, status=422)
    return _redirect(reverse("commands:detail", args=[issued.command.pk]))


def _detail_context(command_id, state: str | None = None) -> dict:
    command = selectors.command_with_counters(command_id)
    return {"section": "commands", "command": command, "counters": command.counters, "state": state,
            "deliveries": selectors.delivery_rows(command.pk, state=state, limit=DETAIL_ROWS), "limit": DETAIL_ROWS}


@require_safe
@login_required
def detail(request, command_id):
    state = request.GET.get("state") or None
    context = _detail_context(_get_command(request, command_id).pk, state)
    command = context["command"]
    context |= {"target": targeting.describe(command.target), "deleted_targets": selectors.deleted_targets(command.pk),
                "retries": command.retries.order_by("created_at"),
                "expires_in_min": _minutes(command.expires_at - command.created_at)}
    return render(request, "commands/detail.html", context)


@require_safe
@login_required
def actions(request, command_id):
    """The page's buttons for this user (a live update that changes which apply refetches them)."""
    command = selectors.command_with_counters(_get_command(request, command_id).pk)
    return render(request, "commands/_command_actions.html",
                  {"command": command, "counters": command.counters, "state": request.GET.get("state") or None})


@require_POST
@role_required("operator")
def cancel(request, command_id):
    command = _get_command(request, command_id)
    services.cancel_command(actor=request.user, command=command, ip=client_ip(request))
    # In place: the buttons, and (out of band) the counters and the rows the cancel changed.
    context = _detail_context(command.pk, request.POST.get("state") or None)
    return render(request, "commands/_command_actions.html", {**context, "oob": True})


@require_http_methods(["GET", "POST"])
@role_required("operator")
def retry(request, command_id):
    """GET: the dry run (how many devices a retry reaches); POST: the retry, issued."""
    command = _get_command(request, command_id)
    context = {"command": command, "candidates": selectors.retry_candidates(command.pk)}
    if request.method == "GET":
        context |= {"dry_run_key": uuid.uuid4(), "expires_in_min": _minutes(command.expires_at - command.created_at)}
        return render(request, "commands/_retry_preview.html", context)
    try:
        issued = services.retry_failed(actor=request.user, command=command, dry_run_key=request.POST.get("dry_run_key", ""),
                                       ip=client_ip(request))
    except ParamsError as exc:
        return render(request, "commands/_retry_preview.html", {**context, "errors": forms.params_errors(exc)}, status=422)
    return _redirect(reverse("commands:detail", args=[issued.command.pk]))


def _minutes(delta) -> int:
    return max(round(delta.total_seconds() / 60), 1)


# --- presets, the shell allowlist and Wi-Fi configs: a form under a list ---------------------------

def _saved(request, message: str, url: str) -> HttpResponse:
    """A form under a list was saved: the page again, with the list and a message (HX-Redirect
    for HTMX, a redirect otherwise)."""
    messages.success(request, message)
    return _redirect(url) if request.htmx else redirect(url)


def _form_page(request, form, page: str, partial: str, context: dict) -> HttpResponse:
    """The page, or (an HTMX POST) the form alone, swapped in place; 422 while it has errors,
    which stand beside their fields."""
    status = 422 if form.errors else 200
    if request.method == "POST" and request.htmx:
        return render(request, partial, {"form": form}, status=status)
    return render(request, page, {"section": "commands", "form": form, **context}, status=status)


@write_requires("operator")
def presets(request):
    form = forms.PresetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            existing = Preset.objects.filter(name=data["name"], is_latest=True).first()
            if existing:
                services.update_preset(actor=request.user, preset=existing, ip=client_ip(request),
                                       **{k: v for k, v in data.items() if k != "name"})
            else:
                services.create_preset(actor=request.user, ip=client_ip(request), **data)
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            return _saved(request, f"Saved the preset “{data['name']}”.", reverse("commands:presets"))
    return _form_page(request, form, "commands/presets.html", "commands/_preset_form.html", {
        "presets": Preset.objects.filter(is_latest=True, archived=False),
        "history": Preset.objects.filter(is_latest=False).order_by("name", "-version")})


@require_POST
@role_required("operator")
def preset_archive(request, preset_id):
    preset = get_object_or_404(Preset, pk=preset_id)
    services.archive_preset(actor=request.user, preset=preset, ip=client_ip(request))
    return _redirect(reverse("commands:presets"))


# --- shell allowlist ----------------------------------------------------------------------------

@write_requires("admin")
def allowlist(request):
    form = forms.AllowRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.create_allow_rule(actor=request.user, ip=client_ip(request), **form.cleaned_data)
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            return _saved(request, "Allowed: " + " ".join(form.cleaned_data["argv_prefix"]), reverse("commands:allowlist"))
    return _form_page(request, form, "commands/allowlist.html", "commands/_allow_form.html",
                      {"rules": ShellAllowRule.objects.all()})


@require_POST
@role_required("admin")
def allow_rule_toggle(request, rule_id):
    rule = get_object_or_404(ShellAllowRule, pk=rule_id)
    services.update_allow_rule(actor=request.user, rule=rule, enabled=not rule.enabled, ip=client_ip(request))
    return render(request, "commands/_allow_row.html", {"rule": rule})


@require_POST
@role_required("admin")
def allow_rule_delete(request, rule_id):
    rule = get_object_or_404(ShellAllowRule, pk=rule_id)
    services.delete_allow_rule(actor=request.user, rule=rule, ip=client_ip(request))
    return HttpResponse("")


# --- Wi-Fi --------------------------------------------------------------------------------------

@write_requires("operator")
def wifi(request):
    form = forms.WifiForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            existing = WifiConfig.objects.filter(name=data["name"]).first()
            if existing:
                services.update_wifi_config(actor=request.user, config=existing, ip=client_ip(request),
                                            ssid=data["ssid"], security=data["security"], hidden=data["hidden"],
                                            group=data["group"], password=data["password"] or None)
            else:
                services.create_wifi_config(actor=request.user, ip=client_ip(request), **data)
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            return _saved(request, f"Saved the Wi-Fi configuration “{data['name']}”.", reverse("commands:wifi"))
    return _form_page(request, form, "commands/wifi.html", "commands/_wifi_form.html",
                      {"configs": WifiConfig.objects.select_related("group")})


@require_POST
@role_required("operator")
def wifi_push(request, config_id):
    config = get_object_or_404(WifiConfig, pk=config_id)
    try:
        issued = services.push_wifi_config(actor=request.user, config=config, ip=client_ip(request))
    except ParamsError as exc:  # told beside the button
        where = f"group {config.group.name}" if config.group_id else "the fleet"
        errors = [f"No device in {where} to send it to."] if "target" in exc.errors else plain_messages(exc.errors)
        return render(request, "commands/_wifi_push.html", {"c": config, "errors": errors}, status=422)
    return _redirect(reverse("commands:detail", args=[issued.command.pk]))
