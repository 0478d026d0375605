"""The commands part of a device's page: quick actions and the commands the device received, with
its own state of each. devices/ sits below commands/ and cannot render this, so the device page
loads it by URL (devices/device_detail.html), as it loads the device's alerts."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_POST, require_safe

from accounts.permissions import role_required
from commands import forms, selectors, services
from commands.models import FINAL_STATES, Preset
from commands.params import ParamsError
from commands.policies.selectors import kiosk_of
from devices.models import Device
from mdm.audit import client_ip

HISTORY_PAGE = 20


def _get_device_for_user(request, device_id) -> Device:
    device = Device.objects.for_user(request.user).filter(pk=device_id).first()
    if device is None:
        raise Http404("No such device.")
    return device


def _section(request, device, *, issued=None, errors=(), status=200):
    page = Paginator(selectors.device_deliveries(device.pk), HISTORY_PAGE).get_page(request.GET.get("page"))
    context = {
        "device": device,
        "page": page,
        "pending": any(d.state not in FINAL_STATES for d in page),
        "kiosk": kiosk_of(device.pk),
        "presets": Preset.objects.filter(is_latest=True, archived=False).order_by("name").only("pk", "name", "version"),
        "issued": issued,
        "errors": errors,
    }
    return render(request, "commands/_device_commands.html", context, status=status)


@require_safe
@login_required
def device_commands(request, device_id):
    return _section(request, _get_device_for_user(request, device_id))


@require_POST
@role_required("operator")
def device_quick_action(request, device_id):
    """Reboot, lock, relaunch the kiosk app of the device's policy, or send a preset: one command
    to this one device, issued as the composer issues it."""
    device = _get_device_for_user(request, device_id)
    try:
        issued = services.issue_command(actor=request.user, ip=client_ip(request), target={"device_ids": [str(device.pk)]},
                                        **forms.quick_action(request.POST, kiosk=kiosk_of(device.pk)))
    except ParamsError as exc:
        return _section(request, device, errors=forms.params_errors(exc), status=422)
    return _section(request, device, issued=issued.command)
