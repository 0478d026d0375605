"""The APK page: releases grouped by package, filtered by one FilterSet (apks.filters, shared
with the API); a release's page with the devices that run it, an older or newer version, or
miss it; the uploader mount point (admins); marking the agent release (admins); and the agent
release's public download for provisioning (a device being set up has no credentials)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from apks import selectors
from apks.filters import ReleaseFilter
from apks.models import Release
from apks.services import releases
from mdm.audit import client_ip


def _get_release_for_user(request, release_id) -> Release:
    return get_object_or_404(Release.objects.for_user(request.user), pk=release_id)


@require_GET
@login_required
def index(request):
    filters = ReleaseFilter(request.GET or None, queryset=Release.objects.for_user(request.user).order_by("package", "-version_code"))
    shown = list(filters.qs) if filters.is_valid() else list(filters.queryset)
    running = selectors.running_counts(shown)
    for release in shown:
        release.running_on = running.get((release.package, release.version_code), 0)
    context = {
        "filters": filters,
        "packages": selectors.grouped_by_package(shown),
        "channels": settings.APK_CHANNELS,
        "params": request.GET,
        "section": "apks",
        "agent": releases.agent_release(),
    }
    template = "apks/_release_list.html" if request.htmx and not request.htmx.boosted else "apks/index.html"
    return render(request, template, context)


@require_GET
@login_required
def release_detail(request, release_id):
    release = _get_release_for_user(request, release_id)
    context = {"release": release, "coverage": selectors.coverage(release), "section": "apks",
               "limit": selectors.LIST_LIMIT, "agent_url": agent_url(release)}
    return render(request, "apks/release_detail.html", context)


@require_POST
@role_required("admin")
def mark_agent(request, release_id):
    release = releases.mark_agent_release(actor=request.user, release=_get_release_for_user(request, release_id), ip=client_ip(request))
    return render(request, "apks/_agent_mark.html", {"release": release, "agent_url": agent_url(release)})


def agent_url(release: Release) -> str:
    from django.urls import reverse

    return settings.PUBLIC_BASE_URL + reverse("apks:agent_download", args=[release.id])


@require_GET
def agent_download(request, release_id):
    """The agent APK for provisioning (QR code, adb): public, but only the release an admin
    marked as the agent; any other id is a 404, so this serves nothing else."""
    from apks import device_api

    release = Release.objects.filter(pk=release_id, agent=True).first()
    if release is None:
        raise Http404("No such agent release.")
    return device_api.serve_release(request, release)
