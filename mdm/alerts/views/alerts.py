"""Alerts in the console: the list (tabs open, acknowledged, flapping, resolved, all; filters by
severity, rule, group), an alert's page with its timeline, acknowledge and snooze (operators),
a device's alerts and the open count. Lists and pages refresh live (mdm.alerts.live)."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_required
from commands.params import ParamsError
from devices.models import Device
from mdm.alerts import selectors, services
from mdm.alerts.filters import TABS, AlertFilter
from mdm.alerts.forms import SNOOZE_CHOICES, SnoozeForm
from mdm.alerts.models import Alert, AlertRule, Severity
from mdm.audit import client_ip

PAGE_SIZE = 50
FILTERS = ("severity", "rule", "group", "notification")  # notification: the link in an e-mail or webhook


def _get_alert_for_user(request, alert_id) -> Alert:
    return get_object_or_404(selectors.alerts_for(request.user), pk=alert_id)


def _filtered(request, tab: str):
    """The tab's preset with the page's filters; a malformed filter value is left out, not an error."""
    chosen = {k: request.GET[k] for k in FILTERS if request.GET.get(k)}
    filters = AlertFilter({**chosen, **TABS[tab][1]}, queryset=selectors.alerts_for(request.user))
    if not filters.is_valid():
        chosen = {k: v for k, v in chosen.items() if k not in filters.errors}
        filters = AlertFilter({**chosen, **TABS[tab][1]}, queryset=selectors.alerts_for(request.user))
    return filters.qs, chosen


@require_GET
@login_required
def index(request):
    default = "all" if request.GET.get("notification") else "open"
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else default
    alerts, chosen = _filtered(request, tab)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "section": "alerts", "page": page, "tab": tab, "chosen": chosen, "query": urlencode(chosen),
        "page_query": urlencode({**chosen, "tab": tab}),
        "tabs": [(key, label, n) for (key, (label, _)), n in zip(TABS.items(), _tab_counts())],
        "rules": AlertRule.objects.order_by("name").values_list("pk", "name"),
        "groups": Alert.objects.exclude(group_name="").order_by("group_name").values_list("group_name", flat=True).distinct(),
        "snooze_choices": SNOOZE_CHOICES, "severities": Severity.choices,
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "alerts/_alerts_live.html", context)
    return render(request, "alerts/index.html", context)


def _tab_counts() -> list:
    counts = selectors.tab_counts()
    return [counts.get(tab) for tab in TABS]


@require_GET
@login_required
def detail(request, alert_id):
    alert = _get_alert_for_user(request, alert_id)
    template = "alerts/_alert_detail.html" if request.htmx and request.htmx.target == "alerts-live" else "alerts/detail.html"
    return render(request, template, _detail_context(alert))


def _detail_context(alert: Alert, **extra) -> dict:
    device = None
    if alert.subject_type == Alert.Subject.DEVICE:
        device = Device.objects.filter(pk=alert.subject_id).only("pk", "alias", "hardware_id").first()
    return {"section": "alerts", "alert": alert, "timeline": selectors.timeline(alert), "device": device,
            "notifications": selectors.notifications(alert), "snooze_choices": SNOOZE_CHOICES, **extra}


def _answer(request, alert: Alert, status: int = 200, **extra):
    """After acknowledge or snooze: the alert's row on the list, its page's body on its page."""
    alert = _get_alert_for_user(request, alert.pk)
    if request.htmx and request.htmx.target == "alerts-live":
        return render(request, "alerts/_alert_detail.html", _detail_context(alert, **extra), status=status)
    return render(request, "alerts/_alert_row.html", {"a": alert, "snooze_choices": SNOOZE_CHOICES, **extra}, status=status)


@require_POST
@role_required("operator")
def acknowledge(request, alert_id):
    alert = services.acknowledge(actor=request.user, alert=_get_alert_for_user(request, alert_id), ip=client_ip(request))
    return _answer(request, alert)


@require_POST
@role_required("operator")
def snooze(request, alert_id):
    alert = _get_alert_for_user(request, alert_id)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return _answer(request, alert, 422, snooze_error=form.errors["minutes"][0])
    try:
        alert = services.snooze(actor=request.user, alert=alert, minutes=form.cleaned_data["minutes"], ip=client_ip(request))
    except ParamsError as exc:
        return _answer(request, alert, 422, snooze_error=exc.detail)
    return _answer(request, alert)


@require_GET
@login_required
def open_count(request):
    """The open count for the navigation and the dashboard, loaded after the page renders."""
    return render(request, "alerts/_open_count.html", {"open_count": selectors.open_count()})


@require_GET
@login_required
def device_alerts(request, device_id):
    """The device page's alerts section (loaded after the page, and again on a live change)."""
    if not Device.objects.for_user(request.user).filter(pk=device_id).exists():
        raise Http404("No such device.")
    return render(request, "alerts/_device_alert_list.html", {"alerts": selectors.device_alerts(device_id),
                                                               "device_id": device_id})
