"""Alert rules in the console: the list (everyone), enable and disable, a new rule of a chosen
kind, the edit form with the kind's params in their units, delete (admins)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required, write_requires
from commands.params import ParamsError
from mdm.alerts import selectors, services
from mdm.alerts.forms import RuleForm
from mdm.alerts.kinds import KINDS
from mdm.alerts.models import AlertRule
from mdm.audit import client_ip


def _get_rule(rule_id) -> AlertRule:
    return get_object_or_404(AlertRule, pk=rule_id)


@require_GET
@login_required
def rule_list(request):
    rules = list(selectors.rules_with_open_counts(AlertRule.objects.order_by("name")))
    failing = [r for r in rules if r.enabled and r.failing_since]
    return render(request, "alerts/rules.html", {"section": "alerts", "rules": rules, "kinds": KINDS, "failing": failing})


@require_POST
@role_required("admin")
def rule_enabled(request, rule_id):
    """Enable or disable (the `enabled` field: "true" or anything else)."""
    rule = services.update_rule(actor=request.user, rule=_get_rule(rule_id), data={"enabled": request.POST.get("enabled") == "true"},
                                ip=client_ip(request))
    rule = selectors.rules_with_open_counts(AlertRule.objects.filter(pk=rule.pk)).get()
    return render(request, "alerts/_rule_row.html", {"rule": rule})


@require_http_methods(["GET", "POST"])
@role_required("admin")
def rule_new(request):
    kind = request.GET.get("kind") if request.GET.get("kind") in KINDS else next(iter(KINDS))
    form = RuleForm(request.POST, kind=kind) if request.method == "POST" else RuleForm(kind=kind)
    if request.method == "POST":
        return _save(request, form, lambda data: services.create_rule(actor=request.user, data=data, ip=client_ip(request)))
    return render(request, "alerts/rule_form.html", {"section": "alerts", "form": form, "kinds": KINDS, "kind": kind})


@write_requires("admin")
def rule_edit(request, rule_id):
    rule = _get_rule(rule_id)
    if request.method == "POST":
        form = RuleForm(request.POST, kind=rule.kind, rule=rule)
        return _save(request, form, lambda data: services.update_rule(actor=request.user, rule=rule, data=data,
                                                                      ip=client_ip(request)))
    if request.method != "GET":
        return HttpResponse(status=405)
    return render(request, "alerts/rule_form.html", {"section": "alerts", "form": RuleForm(kind=rule.kind, rule=rule),
                                                     "rule": rule, "kinds": KINDS, "kind": rule.kind})


def _save(request, form: RuleForm, service):
    """Valid and accepted: back to the rules with a message; else the form again, its errors in place."""
    if form.is_valid():
        try:
            rule = service(form.to_data())
        except ParamsError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Saved the rule “{rule.name}”.")
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("alerts:rules")
            return response
    return render(request, "alerts/_rule_form.html", {"form": form, "rule": form.rule, "kind": form.kind.key}, status=422)


@require_POST
@role_required("admin")
def rule_delete(request, rule_id):
    rule = _get_rule(rule_id)
    services.delete_rule(actor=request.user, rule=rule, ip=client_ip(request))
    messages.success(request, f"Deleted the rule “{rule.name}” and its alerts.")
    response = HttpResponse(status=204)
    response["HX-Redirect"] = reverse("alerts:rules")
    return response
