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
from mdm.formfields import plain_messages


def _get_release_for_user(request, release_id) -> Release:
    return get_object_or_404(Release.objects.for_user(request.user), pk=release_id)


RELEASE_FILTERS = ("package", "channel", "version_code_min", "version_code_max", "signer", "min_sdk", "uploader",
                   "uploaded_after", "uploaded_before")  # the filter bar's inputs (apks/index.html)


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
    partial = request.htmx and not request.htmx.boosted
    if partial:  # a filter's error stands beside its input: the list's answer fills those slots out of band
        context.update(oob=True, slots=[(name, filters.errors.get(name, [])) for name in RELEASE_FILTERS])
    template = "apks/_release_list.html" if partial else "apks/index.html"
    return render(request, template, context, status=422 if filters.errors else 200)


@require_GET
@login_required
def release_detail(request, release_id):
    release = _get_release_for_user(request, release_id)
    context = {"release": release, "coverage": selectors.coverage(release), "section": "apks",
               "limit": selectors.LIST_LIMIT, "agent_url": agent_url(release), **_deploy_context()}
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


# -- deployment and rollouts ------------------------------------------------------------------------
def _deploy_context():
    from commands.forms import TARGET_KINDS
    from devices.models import DeviceGroup, Tag

    return {"target_kinds": TARGET_KINDS, "groups": DeviceGroup.objects.all(), "tags": Tag.objects.all()}


@require_POST
@role_required("operator")
def deploy_release(request, release_id):
    """The deploy form: `preview` answers the dry run (counts, waves); otherwise deploy and go to
    the command's or the rollout's page."""
    from django.urls import reverse

    from apks.forms import DEPLOY_FIELDS, deploy_errors, deploy_request
    from apks.services import deploy
    from commands.params import ParamsError

    release = _get_release_for_user(request, release_id)
    dry_run = bool(request.POST.get("preview"))
    try:
        done = deploy.deploy_release(actor=request.user, release=release, dry_run=dry_run, ip=client_ip(request),
                                     **deploy_request(request.POST))
    except ParamsError as exc:
        # A field's error beside it (its slot, filled out of band), the rest where the preview goes.
        fields, others = deploy_errors(exc.errors)
        slots = [(name, fields.get(name, [])) for name in DEPLOY_FIELDS]
        return render(request, "apks/_deploy_preview.html", {"errors": others, "slots": slots, "failed": True,
                                                             "dry_run": dry_run}, status=422)
    if dry_run:
        return render(request, "apks/_deploy_preview.html", {"release": release, "selection": done.selection, "waves": done.waves,
                                                             "excluded": deploy.describe_excluded(done.selection),
                                                             "slots": [(name, []) for name in DEPLOY_FIELDS]})
    url = reverse("apks:rollout", args=[done.rollout.pk]) if done.rollout else reverse("commands:detail", args=[done.command.pk])
    response = HttpResponse(status=204)
    response["HX-Redirect"] = url
    return response


@require_GET
@login_required
def rollout_list(request):
    from apks.models import Rollout

    rows = [selectors.rollout_with_waves(pk) for pk in Rollout.objects.order_by("-created_at").values_list("pk", flat=True)[:100]]
    return render(request, "apks/rollouts.html", {"rollouts": rows, "section": "apks"})


@require_GET
@login_required
def rollout_detail(request, rollout_id):
    rollout = selectors.rollout_with_waves(rollout_id)
    if rollout is None:
        raise Http404("No such rollout.")
    live_counters = None
    if rollout.live_command_id:
        from commands.selectors import command_with_counters

        live_counters = command_with_counters(rollout.live_command_id).counters
    return render(request, "apks/rollout_detail.html", {"rollout": rollout, "section": "apks", "live_counters": live_counters})


@require_POST
@role_required("operator")
def rollout_action(request, rollout_id, verb):
    """pause, resume, retry-failed (operators)."""
    from apks.services import rollouts

    service = {"pause": rollouts.pause_rollout, "resume": rollouts.resume_rollout, "retry-failed": rollouts.retry_failed}[verb]
    return _steer(request, rollout_id, service)


@require_POST
@role_required("admin")
def rollout_rollback(request, rollout_id):
    from apks.services import rollouts

    return _steer(request, rollout_id, rollouts.rollback_rollout, confirm_data_loss=bool(request.POST.get("confirm_data_loss")))


CONFIRM_ROLLBACK = "Tick the box first: rolling back uninstalls the app, so its data on those devices is lost."


def _steer(request, rollout_id, service, **extra):
    from apks.services import rollouts
    from commands.params import ParamsError

    if selectors.rollout_with_waves(rollout_id) is None:
        raise Http404("No such rollout.")
    error = confirm_error = ""
    try:
        service(actor=request.user, rollout_id=rollout_id, ip=client_ip(request), **extra)
    except rollouts.RolloutStateError as exc:
        error = str(exc)
    except ParamsError as exc:
        if "confirm_data_loss" in exc.errors:  # the API's words name its field; here the box is beside the message
            confirm_error = CONFIRM_ROLLBACK
        else:
            error = " ".join(plain_messages(exc.errors))
    context = {"rollout": selectors.rollout_with_waves(rollout_id), "error": error, "confirm_error": confirm_error}
    return render(request, "apks/_rollout_status.html", context, status=422 if error or confirm_error else 200)
