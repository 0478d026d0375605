from datetime import UTC, datetime
from urllib.parse import urlencode

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from drf_spectacular.views import SpectacularSwaggerSplitView

from accounts.permissions import role_required
from mdm import audit_filters, services
from mdm.api import error
from mdm.audit_filters import SEARCH_DAYS, AuditFilter, InvalidCursor, newest_first
from mdm.audit import client_ip
from mdm.forms import FleetSettingsForm
from mdm.metrics import exposition, scrape_allowed
from mdm.models import AuditEvent, FleetSettings


@require_GET
@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(v in ("ok", "not configured") for v in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@require_GET
@never_cache
def metrics(request):
    """Prometheus exposition, for the scraper only (settings: METRICS_TOKEN, METRICS_ALLOWED_IPS).
    The series name every endpoint, queue depths and error counts: a map for an attacker."""
    if scrape_allowed(request.META.get("HTTP_AUTHORIZATION", ""), request.META.get("REMOTE_ADDR", "")):
        body, content_type = exposition()
        return HttpResponse(body, content_type=content_type)
    if settings.METRICS_TOKEN:
        return error("A bearer token is required.", "not_authenticated", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    return error("Metrics are not served to this address.", "permission_denied", 403)



# Swagger UI from drf-spectacular-sidecar's static files; the split view serves its start-up script
# as a file of its own (no inline script: CSP), and templates/api_docs.html has no inline style.
# Who may open it: SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"], as for the schema.
api_docs = SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html")


READY_TIMEOUT_S = 2


def _check_database() -> str:
    connection = connections["default"]
    try:
        if connection.vendor == "postgresql":
            # A connection of its own with a short connect timeout: through the pool a database
            # that is down holds the probe for DB_POOL_TIMEOUT (10 s), past a health check's own
            # deadline (compose: 5 s), so the orchestrator would see a hang, not a 503.
            import psycopg

            params = {k: v for k, v in connection.get_connection_params().items() if k in ("dbname", "user", "password", "host", "port")}
            with psycopg.connect(**params, connect_timeout=READY_TIMEOUT_S, options=f"-c statement_timeout={READY_TIMEOUT_S * 1000}") as probe:
                probe.execute("SELECT 1")
            return "ok"
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means not ready; say which
        return f"error: {type(exc).__name__}"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


@require_GET
@login_required
def dashboard(request):
    """The fleet at a glance (mdm.dashboard). Two parts also answer alone, to htmx: the online
    chart for another period, and the open alerts when the alerts broadcast asks for #alerts-live."""
    from devices.selectors import fleet_summary
    from mdm import dashboard as figures

    period, now = figures.period_of(request.GET.get("period")), timezone.now()
    target = request.htmx.target if request.htmx and not request.htmx.boosted else None
    if target == "fleet-online":
        context = figures.online_context(period=period, now=now, summary=fleet_summary(request.user))
        return render(request, "dashboard/_online.html", context)
    if target == "alerts-live":
        return render(request, "alerts/_dashboard_alert_list.html", figures.alerts_context(request.user))
    return render(request, "dashboard.html", figures.page_context(request.user, period=period, now=now))


@require_http_methods(["GET", "POST"])
@login_required
def fleet_settings(request):
    """The settings drawer: everyone can read; only admins save."""
    fleet = FleetSettings.current() if request.method == "GET" else FleetSettings.objects.get_or_create(pk=1)[0]
    if request.method == "POST":
        if not request.user.is_admin_role:
            return HttpResponse("Only admins can change fleet settings.", status=403)
        form = FleetSettingsForm(request.POST, instance=fleet)
        if form.is_valid():
            services.update_fleet_settings(actor=request.user, ip=client_ip(request), **form.changed_settings())
            response = render(request, "_settings_form.html", {"form": FleetSettingsForm(instance=fleet), "saved": True})
            response["HX-Trigger"] = "fleetSettingsSaved"
            return response
        return render(request, "_settings_form.html", {"form": form}, status=422)
    return render(request, "_settings_form.html", {"form": FleetSettingsForm(instance=fleet)})


AUDIT_PAGE_SIZE = 50


@require_GET
@role_required("operator")
def audit_log(request):
    """Admins and operators read the audit log (viewers do not: it names people, addresses and
    what they changed). The filter form swaps the table partial in place."""
    events = AuditFilter(request.GET, queryset=AuditEvent.objects.all())
    partial = request.htmx and not request.htmx.boosted
    # A filter's error stands beside its input; the table's answer fills those slots out of band.
    context = {"section": "audit", "filter": events, "query": _audit_query(request), "oob": partial,
               "cap": f"{audit_filters.CSV_CAP:,}", "search_days": SEARCH_DAYS}
    try:
        if events.is_valid():
            context["page"] = newest_first(events.qs, cursor=request.GET.get("cursor"), size=AUDIT_PAGE_SIZE)
    except InvalidCursor as exc:
        context["cursor_error"] = str(exc)
    status = 200 if "page" in context else 422  # bad filters: the table with its message, swapped in place
    return render(request, "_audit_table.html" if partial else "audit_log.html", context, status=status)


@require_GET
@role_required("operator")
def audit_export(request):
    """The filtered events as CSV, newest first, at most audit_filters.CSV_CAP rows (X-Row-Cap; X-Rows-Truncated
    says whether more matched), streamed a batch at a time."""
    events = AuditFilter(request.GET, queryset=AuditEvent.objects.all())
    if not events.is_valid():
        return HttpResponse(" ".join(_form_errors(events.form)), status=400, content_type="text/plain; charset=utf-8")
    batches = audit_filters.csv_batches(events.qs)
    # Under ASGI a plain iterator would be read whole before the first byte goes out.
    content = _async_lines(batches) if isinstance(request, ASGIRequest) else ("".join(batch) for batch in batches)
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"'
    response["X-Row-Cap"] = str(audit_filters.CSV_CAP)
    response["X-Rows-Truncated"] = "true" if audit_filters.exceeds_cap(events.qs) else "false"
    return response


async def _async_lines(batches):
    while (batch := await sync_to_async(next, thread_sensitive=True)(batches, None)) is not None:
        yield "".join(batch)


def _audit_query(request) -> str:
    return urlencode({k: v for k, v in request.GET.items() if k in AuditFilter.base_filters and v})


def _form_errors(form) -> list[str]:
    """The filters' errors in the reader's terms: "From: Enter a valid date/time."."""
    return [f"{form.fields[name].label if name in form.fields else 'Filters'}: {' '.join(errors)}" for name, errors in form.errors.items()]


DEAD_LETTERS_SHOWN = 200


def _operations_context() -> dict:
    from commands import results
    from commands.policies import reports
    from devices import writebehind
    from mdm import deadletters

    return {
        "heartbeats": writebehind.backlog(),
        "results": results.backlog(),
        "policy_reports": reports.backlog(),
        "dead_letter_count": deadletters.count(),
        "dead_letters": [{**d, "when": datetime.fromtimestamp(d["at"], tz=UTC)} for d in deadletters.entries(limit=DEAD_LETTERS_SHOWN)],
        "shown": DEAD_LETTERS_SHOWN,
        "max_letters": deadletters.MAX_LETTERS,
    }


@require_GET
@role_required("admin")
def operations(request):
    """The write-behind at a glance: what waits for the flushes and what they set aside."""
    context = {"section": "operations", **_operations_context()}
    if request.htmx:
        return render(request, "_dead_letters.html", context)
    return render(request, "operations.html", context)


@require_POST
@role_required("admin")
def purge_dead_letters(request):
    services.purge_dead_letters(actor=request.user, ip=client_ip(request))
    return render(request, "_dead_letters.html", {"section": "operations", **_operations_context(), "purged": True})
