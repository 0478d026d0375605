"""The console's policy pages (docs/policies.md "In the console"): the list, a policy's page
(items, compliance of its devices, versions and their differences, assignments, its audit
trail), the editor and the assignment with its dry run. Everyone signed in reads; only admins
change a policy or assign it, as in the admin API (commands.policies.api), because a policy
changes every device it reaches."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from accounts.permissions import role_required, write_requires
from commands import forms as command_forms
from commands import targeting
from commands.params import ParamsError
from commands.policies import display, forms, selectors, services
from commands.policies import items as policy_items
from commands.policies.models import Policy, PolicyAssignment
from devices.filters import DeviceFilter
from devices.models import Device, DeviceGroup, Tag
from mdm.audit import client_ip
from mdm.formfields import plain_messages

SAMPLE = 10
# The assignment's target kinds: the composer's, but "all" is the fleet default here.
TARGET_KINDS = [("group", "A group"), ("all", "Fleet default (devices with no policy of their own or of their group)"),
                ("tags", "Tags (the devices tagged now)"), ("device_ids", "Devices by id"), ("filter", "A filter (the devices it matches now)")]


def _get_policy(request, policy_id) -> Policy:
    # Every signed-in user reads every policy (as the admin API); writes are checked by role.
    return get_object_or_404(Policy.objects.select_related("current"), pk=policy_id)


def _go(request, url: str) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@require_safe
@login_required
def policy_list(request):
    return render(request, "commands/policies/list.html", {"section": "commands", "policies": selectors.policy_rows()})


@require_safe
@login_required
def policy_detail(request, policy_id):
    policy = _get_policy(request, policy_id)
    versions = selectors.versions(policy)
    context = {
        "section": "commands", "policy": policy, "items": display.describe(policy.current.items, policy.current.sources),
        "warnings": forms.warnings(policy.current.items), "compliance": selectors.policy_compliance(policy),
        "non_compliant": selectors.non_compliant_devices(policy), "assigned": selectors.assignments(policy),
        "versions": versions, "history": selectors.history(policy),
        "diff": _diff_context(policy, versions[1] if len(versions) > 1 else None, versions[0]),
        "target_kinds": TARGET_KINDS, "groups": DeviceGroup.objects.all(), "tags": Tag.objects.all(),
        "filter_form": DeviceFilter().form,
    }
    return render(request, "commands/policies/detail.html", context)


def _diff_context(policy, old, new) -> dict:
    return {"policy": policy, "old": old, "new": new, "rows": display.item_diff(old.items if old else {}, new.items)}


@require_safe
@login_required
def policy_diff(request, policy_id):
    policy = _get_policy(request, policy_id)
    old, new = selectors.version_of(policy, request.GET.get("from")), selectors.version_of(policy, request.GET.get("to"))
    if old is None or new is None:
        raise Http404("No such version of this policy.")
    context = {**_diff_context(policy, old, new), "versions": selectors.versions(policy), "section": "commands"}
    template = "commands/policies/_diff.html" if request.htmx else "commands/policies/diff.html"
    return render(request, template, context)


# --- the editor ---------------------------------------------------------------------------------

def _editor_page(request, editor, policy=None, status=200):
    context = {"section": "commands", "editor": editor, "policy": policy, "labels": forms.LABELS,
               "update_types": forms.UPDATE_TYPES, "restrictions": sorted(policy_items.RESTRICTIONS),
               "settings": [{**f, "value": editor.settings.get(f["key"], "")} for f in forms.setting_fields()],
               "max_freeze_days": policy_items.FREEZE_MAX_DAYS, "min_gap_days": policy_items.FREEZE_MIN_GAP_DAYS,
               **selectors.editor_choices()}
    template = "commands/policies/_editor.html" if request.htmx else "commands/policies/edit.html"
    return render(request, template, context, status=status)


def _save(request, editor, policy=None):
    """Validate every item, then one service call; 422 with the form and its errors, or on to the
    policy's page (warnings, which never block, go with it as messages)."""
    items = editor.validate()
    if items is not None:
        try:
            if policy is None:
                policy = services.create_policy(actor=request.user, name=editor.name, items=items,
                                                description=editor.description, ip=client_ip(request))
            elif _unchanged(policy, items, editor.description):
                messages.info(request, f"Nothing changed: {policy.name} stays at version {policy.version}.")
                return _go(request, reverse("commands:policy_detail", args=[policy.pk]))
            else:
                policy = services.update_policy(actor=request.user, policy=policy, items=items,
                                                description=editor.description, ip=client_ip(request))
        except ParamsError as exc:
            editor.add_errors(exc)
            items = None
    if items is None:
        return _editor_page(request, editor, policy, status=422)
    for warning in forms.warnings(policy.current.items):
        messages.warning(request, warning)
    messages.success(request, f"Saved {policy.name}, version {policy.version}.")
    return _go(request, reverse("commands:policy_detail", args=[policy.pk]))


def _unchanged(policy, items, description) -> bool:
    cleaned = policy_items.clean_items(items)
    current = policy.current
    return (cleaned.items == current.items and cleaned.sources == current.sources
            and cleaned.secret == current.secret_values() and description == policy.description)


@write_requires("admin")
def policy_new(request):
    if request.method == "POST":
        return _save(request, forms.PolicyEditor.from_post(request.POST))
    if not request.user.has_role("admin"):
        return HttpResponse("This needs the admin role.", status=403)
    return _editor_page(request, forms.PolicyEditor())


@write_requires("admin")
def policy_edit(request, policy_id):
    policy = _get_policy(request, policy_id)
    if request.method == "POST":
        editor = forms.PolicyEditor.from_post(request.POST)
        editor.name = policy.name  # the name is not edited: versions belong to it
        return _save(request, editor, policy)
    if not request.user.has_role("admin"):
        return HttpResponse("This needs the admin role.", status=403)
    editor = forms.PolicyEditor.from_items(policy.current.items, sources=policy.current.sources, name=policy.name,
                                           description=policy.description)
    return _editor_page(request, editor, policy)


# --- assignment ---------------------------------------------------------------------------------

@require_POST
@role_required("admin")
def policy_assign(request, policy_id):
    """`preview` answers the dry run (how many devices the target selects, a sample); otherwise
    assign and go back to the policy's page."""
    policy = _get_policy(request, policy_id)
    target = command_forms.target_from_post(request.POST)
    try:
        if request.POST.get("preview"):
            ids = services.preview_assignment(target=target)
            sample = Device.objects.filter(pk__in=ids[:SAMPLE]).select_related("group", "policy_state")
            return render(request, "commands/policies/_assign_preview.html", {
                "policy": policy, "count": len(ids), "sample": sample, "target": _describe(target)})
        done = services.assign_policy(actor=request.user, policy=policy, target=target, ip=client_ip(request))
    except ParamsError as exc:
        return render(request, "commands/policies/_assign_preview.html",
                      {"policy": policy, "errors": plain_messages(exc.errors)}, status=422)
    messages.success(request, f"{policy.name} assigned to {_describe(target)}: {done['target_count']} device"
                              f"{'s' if done['target_count'] != 1 else ''} selected, {done['changed']} changed policy or version.")
    return _go(request, reverse("commands:policy_detail", args=[policy.pk]))


def _describe(target) -> str:
    spec = targeting.normalize(target)
    return "the fleet default" if "all" in spec else targeting.describe(spec)


@require_POST
@role_required("admin")
def policy_unassign(request, policy_id):
    """Remove one of the policy's assignments: a group's, the fleet default, or every device's own."""
    policy = _get_policy(request, policy_id)
    kind = request.POST.get("kind")
    if kind == "group":
        target = {"group": request.POST.get("group", "")}
    elif kind == "fleet_default":
        target = {"all": True}
    elif kind == "devices":
        ids = [str(d) for d in PolicyAssignment.objects.filter(policy=policy, device__isnull=False, device__deleted_at__isnull=True)
               .values_list("device_id", flat=True)]
        if not ids:
            return HttpResponse("This policy is assigned to no device of its own.", status=400)
        target = {"device_ids": ids}
    else:
        return HttpResponse("Say what to unassign: a group, the fleet default or the devices.", status=400)
    try:
        done = services.unassign_policy(actor=request.user, policy=policy, target=target, ip=client_ip(request))
    except ParamsError as exc:
        return HttpResponse("; ".join(command_forms.params_errors(exc)), status=400, content_type="text/plain; charset=utf-8")
    messages.success(request, f"{policy.name} unassigned: {done['target_count']} assignment"
                              f"{'s' if done['target_count'] != 1 else ''} removed, {done['changed']} device"
                              f"{'s' if done['changed'] != 1 else ''} changed policy.")
    return _go(request, reverse("commands:policy_detail", args=[policy.pk]))
