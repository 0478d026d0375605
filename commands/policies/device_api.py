"""The policy channel's device endpoints (PROTOCOL.md v1.1): plain views, JSON only, like the
rest of the device API. Authenticate, one read or one write, answer."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from commands.policies import services
from devices import tokens
from devices.api.body import method_not_allowed, read_json_object, shed_load
from devices.auth import presented_token, refused, token_invalid
from mdm import text
from mdm.api import error

MAX_REPORTED_ITEMS = 32
MAX_VERSION = 2**63 - 1


def _invalid(name: str, message: str) -> JsonResponse:
    return error(f"{name}: {message}", "invalid", 400, fields={name: [message]})


@csrf_exempt
@shed_load
def policy(request):
    """The token check and the reads the document needs (cached version, marker, keyset) are one
    Redis call (devices.tokens.verify_with); the answers stay those of device_required."""
    token = presented_token(request)
    if token is None:
        return token_invalid()
    if request.method != "GET":
        return refused(token, method_not_allowed("GET"))
    checked = tokens.verify_with(token, read_prefixes=services.fetch_prefixes())
    if checked.device_id is None:
        return token_invalid()
    request.device_id = checked.device_id
    return JsonResponse(services.device_document(device_id=checked.device_id, read=checked.values))


def _text_problem(value, limit: int) -> str | None:
    if not isinstance(value, str):
        return "Must be a string."
    bad = text.forbidden_character(value)
    if bad is not None:
        return f"Must not contain {bad}."
    if len(value) > limit:
        return f"At most {limit} characters."
    return None


def parse_status(body: dict) -> tuple[int, dict] | JsonResponse:
    """{"version": int, "items": {name: {"state", "reason"?}}}, or the 400 naming the field."""
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
        return _invalid("version", "The policy version the report is about: an integer, 0 or more.")
    items = body.get("items")
    if not isinstance(items, dict) or len(items) > MAX_REPORTED_ITEMS:
        return _invalid("items", f"An object of at most {MAX_REPORTED_ITEMS} items, each {{\"state\", \"reason\"}}.")
    cleaned = {}
    limit = text.max_length("reason")
    for name, entry in items.items():
        problem = _text_problem(name, 64)
        if problem:
            return _invalid("items", f"An item name: {problem}")
        field = f"items.{name}"
        if not isinstance(entry, dict):
            return _invalid(field, "Must be an object with a state.")
        state = entry.get("state")
        if state not in services.STATES:
            return _invalid(f"{field}.state", f"One of {', '.join(services.STATES)}.")
        reason = entry.get("reason")
        if reason is not None:
            problem = _text_problem(reason, limit)
            if problem:
                return _invalid(f"{field}.reason", problem)
        cleaned[name] = {"state": state, **({"reason": reason} if reason else {})}
    return version, cleaned


@csrf_exempt
@shed_load
def status(request):
    """The token check queues the report in the same Redis call when it can
    (services.report_policy_status); the answers stay those of device_required: 401 before
    anything else for a bad token."""
    token = presented_token(request)
    if token is None:
        return token_invalid()
    if request.method != "PUT":
        return refused(token, method_not_allowed("PUT"))
    body = read_json_object(request)
    if isinstance(body, JsonResponse):
        return refused(token, body)
    parsed = parse_status(body)
    if isinstance(parsed, JsonResponse):
        return refused(token, parsed)
    version, items = parsed
    device_id = services.report_policy_status(token=token, version=version, items=items)
    if device_id is None:
        return token_invalid()
    request.device_id = device_id
    return HttpResponse(status=204)
