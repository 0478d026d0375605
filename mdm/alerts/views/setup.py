"""Where alerts go: webhooks (admins; the secret shown once, a test button, the delivery log),
maintenance windows (everyone reads, operators write) and one's own e-mail preferences."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import role_required, write_requires
from commands.params import ParamsError
from devices.models import DeviceGroup
from mdm.alerts import services
from mdm.alerts.forms import PreferencesForm, WebhookEditForm, WebhookForm, WindowForm
from mdm.alerts.models import MaintenanceWindow, NotificationPreference, WebhookEndpoint
from mdm.audit import client_ip

LOG_SIZE = 50


# --- webhooks ------------------------------------------------------------------------------------


def _webhooks_context(form=None, **extra) -> dict:
    return {"section": "alerts", "hooks": WebhookEndpoint.objects.order_by("name"), "form": form or WebhookForm(), **extra}


@require_http_methods(["GET", "POST"])
@role_required("admin")
def webhooks(request):
    if request.method == "GET":
        return render(request, "alerts/webhooks.html", _webhooks_context())
    form = WebhookForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        secret = d["secret"] or services.new_webhook_secret()
        try:
            hook = services.create_webhook(actor=request.user, name=d["name"], url=d["url"], secret=secret,
                                           all_rules=d["all_rules"], enabled=d["enabled"], ip=client_ip(request))
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            return render(request, "alerts/_webhooks_panel.html", _webhooks_context(created=hook, secret=secret))
    return render(request, "alerts/_webhooks_panel.html", _webhooks_context(form), status=422)


def _get_hook(hook_id) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, pk=hook_id)


def _hook_context(hook, form=None, **extra) -> dict:
    form = form or WebhookEditForm(initial={"name": hook.name, "url": hook.url, "all_rules": hook.all_rules,
                                            "enabled": hook.enabled})
    return {"section": "alerts", "hook": hook, "form": form,
            "deliveries": hook.deliveries.order_by("-created_at")[:LOG_SIZE], **extra}


@require_http_methods(["GET", "POST"])
@role_required("admin")
def webhook_detail(request, hook_id):
    hook = _get_hook(hook_id)
    if request.method == "GET":
        template = "alerts/_deliveries.html" if request.htmx and request.htmx.target == "webhook-deliveries" \
            else "alerts/webhook_detail.html"
        return render(request, template, _hook_context(hook))
    form = WebhookEditForm(request.POST)
    if form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "secret" or v}
        try:
            hook = services.update_webhook(actor=request.user, hook=hook, data=data, ip=client_ip(request))
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            return render(request, "alerts/_webhook_form.html", _hook_context(hook, saved=True))
    return render(request, "alerts/_webhook_form.html", _hook_context(hook, form), status=422)


@require_POST
@role_required("admin")
def webhook_test(request, hook_id):
    hook = _get_hook(hook_id)
    services.send_test_webhook(actor=request.user, hook=hook, ip=client_ip(request))
    return render(request, "alerts/_deliveries.html", _hook_context(hook, tested=True))


@require_POST
@role_required("admin")
def webhook_delete(request, hook_id):
    services.delete_webhook(actor=request.user, hook=_get_hook(hook_id), ip=client_ip(request))
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("alerts:webhooks")
    return response


# --- maintenance windows -------------------------------------------------------------------------


def _windows_context(form=None, **extra) -> dict:
    now = timezone.now()
    windows = MaintenanceWindow.objects.select_related("group", "created_by")
    return {"section": "alerts", "now": now, "form": form or WindowForm(),
            "current": windows.filter(ends_at__gt=now).order_by("starts_at")[:100],
            "past": windows.filter(ends_at__lte=now).order_by("-ends_at")[:20], **extra}


@require_http_methods(["GET", "POST"])
@write_requires("operator")
def maintenance(request):
    if request.method == "GET":
        return render(request, "alerts/maintenance.html", _windows_context())
    form = WindowForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        starts_at = d["starts_at"] or timezone.now()
        group = DeviceGroup.objects.filter(name=d["group"]).first() if d["group"] else None
        try:
            services.create_maintenance_window(actor=request.user, group=group, starts_at=starts_at,
                                               ends_at=starts_at + timedelta(minutes=d["duration_minutes"]),
                                               reason=d["reason"], ip=client_ip(request))
        except ParamsError as exc:
            form.add_service_errors({"duration_minutes" if k == "ends_at" else k: v for k, v in exc.errors.items()})
        else:
            return render(request, "alerts/_windows_panel.html", _windows_context(saved=True))
    return render(request, "alerts/_windows_panel.html", _windows_context(form), status=422)


@require_POST
@role_required("operator")
def window_delete(request, window_id):
    window = get_object_or_404(MaintenanceWindow, pk=window_id)
    services.delete_maintenance_window(actor=request.user, window=window, ip=client_ip(request))
    return render(request, "alerts/_windows_panel.html", _windows_context())


# --- my preferences ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request):
    """Every user's own: whether alert e-mails reach them, from which severity, muted rules."""
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.set_alert_preferences(actor=request.user, email_enabled=d["email_enabled"],
                                               min_severity=d["min_severity"], muted_rules=d["muted_rules"], ip=client_ip(request))
            except ParamsError as exc:
                form.add_service_errors(exc.errors)
            else:
                return render(request, "alerts/_preferences_form.html", {"form": _preferences_form(request.user), "saved": True})
        return render(request, "alerts/_preferences_form.html", {"form": form}, status=422)
    return render(request, "alerts/preferences.html", {"section": "alerts", "form": _preferences_form(request.user)})


def _preferences_form(user) -> PreferencesForm:
    pref = NotificationPreference.objects.filter(user=user).prefetch_related("muted_rules").first()
    initial = {"email_enabled": True, "min_severity": "info", "muted_rules": []} if pref is None else {
        "email_enabled": pref.email_enabled, "min_severity": pref.min_severity,
        "muted_rules": [str(r.pk) for r in pref.muted_rules.all()]}
    return PreferencesForm(initial=initial)
