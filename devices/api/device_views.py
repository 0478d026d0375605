"""The device API (PROTOCOL.md): lean plain views, JSON only, no DRF, no session or CSRF.
Authenticate, one write, answer."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from devices import services
from devices.api.body import method_not_allowed, read_json_object, shed_load
from devices.auth import device_required, presented_token, refused, token_invalid
from mdm import metrics, text
from mdm.api import error

MAX_APPS = services.MAX_INVENTORY_APPS


def _counted_rejection(view):
    """Heartbeats refused before the service runs are counted as rejected."""

    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code >= 400:
            metrics.HEARTBEATS.labels("rejected").inc()
        return response

    return wrapped


@csrf_exempt
@_counted_rejection
@shed_load
def heartbeat(request):
    """The token is checked inside the heartbeat's one Redis call (services.record_heartbeat);
    the answers stay those of device_required: 401 before anything else for a bad token."""
    token = presented_token(request)
    if token is None:
        return token_invalid()
    if request.method != "POST":
        return refused(token, method_not_allowed("POST"))
    data = read_json_object(request)
    if isinstance(data, JsonResponse):
        return refused(token, data)
    recorded = services.record_heartbeat(token=token, data=data)
    if recorded is None:
        return token_invalid()
    request.device_id, answer = recorded
    return JsonResponse(answer)


@csrf_exempt
@shed_load
@device_required
def inventory(request):
    if request.method != "PUT":
        return method_not_allowed("PUT")
    data = read_json_object(request)
    if isinstance(data, JsonResponse):
        return data
    apps, fields = _clean_apps(data.get("apps"))
    if fields:
        return error(next(iter(fields.values()))[0], "invalid", 400, fields=fields)
    services.replace_inventory(device_id=request.device_id, apps=apps)
    return HttpResponse(status=204)


def _clean_apps(apps) -> tuple[list[dict], dict]:
    if not isinstance(apps, list):
        return [], {"apps": ["apps: a list of app objects is required."]}
    if len(apps) > MAX_APPS:
        return [], {"apps": [f"apps: at most {MAX_APPS} apps."]}
    cleaned, seen = [], set()
    for i, app in enumerate(apps):
        problem = _app_problem(app, f"apps[{i}]")
        if problem:
            name, message = problem
            return [], {name: [message]}
        if app["package"] in seen:
            continue  # the last word on a package would be ambiguous; keep the first
        seen.add(app["package"])
        cleaned.append(app)
    return cleaned, {}


def _app_problem(app, where: str) -> tuple[str, str] | None:
    """(field name, message) of the entry's first problem; text by the v1.1 rules (mdm.text), so
    nothing PostgreSQL would refuse is ever written (the message never quotes the value)."""
    if not isinstance(app, dict):
        return where, f"{where}: must be an object."
    package = app.get("package")
    if package == "":
        return f"{where}.package", f"{where}.package: 1-{text.DEFAULT_MAX} characters required."
    for name in ("package", "version_name"):
        value = app.get(name)
        if value is None and name != "package":
            continue
        problem = text.problem(value, f"{where}.{name}")
        if problem:
            return f"{where}.{name}", problem
    code = app.get("version_code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < 2**63):
        return f"{where}.version_code", f"{where}.version_code: a non-negative integer."
    for flag in ("system", "enabled"):
        if flag in app and not isinstance(app[flag], bool):
            return f"{where}.{flag}", f"{where}.{flag}: true or false."
    return None
