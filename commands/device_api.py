"""The device side of commands (PROTOCOL.md): plain Django views, JSON only, no DRF, no
sessions: authenticate, one read or one conditional write, answer. Bad input is a 400, never
a 5xx."""

import uuid

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from functools import wraps

from commands import services
from commands.models import DEVICE_STATUSES, REJECT_REASONS, DeliveryState
from devices.api.body import read_json_object, shed_load
from devices.auth import device_required, presented_token, refused, token_invalid
from mdm import text
from mdm.api import error


def _wrong_method(name: str) -> JsonResponse:
    response = error(f"Use {name}.", "method_not_allowed", 405)
    response["Allow"] = name
    return response


def _method(name: str):
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method != name:
                return _wrong_method(name)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _invalid(fields: dict) -> JsonResponse:
    name, messages = next(iter(fields.items()))
    return error(f"{name}: {messages[0]}", "invalid", 400, fields=fields)


@csrf_exempt
@shed_load
@device_required
@_method("GET")
def pull(request):
    raw = request.GET.get("limit", "25")
    try:
        limit = int(raw)
    except ValueError:
        return _invalid({"limit": ["An integer from 1 to 100."]})
    if limit < 1:
        return _invalid({"limit": ["An integer from 1 to 100."]})
    commands, more = services.pull_commands(device_id=request.device_id, limit=min(limit, services.PULL_LIMIT_MAX))
    return JsonResponse({"commands": commands, "more": more})


def _text_problem(value, name: str, limit: int | None) -> str | None:
    """PROTOCOL.md v1.1 text rules (mdm.text), said without the value; `limit` None: not checked
    (`output` is truncated and flagged instead)."""
    if not isinstance(value, str):
        return "Must be a string."
    bad = text.forbidden_character(value)
    if bad is not None:
        return f"Must not contain {bad}."
    if limit is not None and len(value) > limit:
        return f"At most {limit} characters."
    return None


def _parse_result(body: dict) -> tuple[dict, dict]:
    errors: dict = {}
    status = body.get("status")
    if not isinstance(status, str) or status not in DEVICE_STATUSES:
        errors["status"] = [f"One of {', '.join(DEVICE_STATUSES)}."]
        status = None
    reason = body.get("reason")
    if status == DeliveryState.REJECTED and (not isinstance(reason, str) or reason not in REJECT_REASONS):
        errors["reason"] = [f"A rejection needs a reason: one of {', '.join(REJECT_REASONS)}."]
    exit_code = body.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int) or not -(2**31) <= exit_code < 2**31):
        errors["exit_code"] = ["A 32-bit integer or null."]
    for name, limit in (("output", None), ("error", text.max_length("error")), ("reason", text.max_length("reason"))):
        if body.get(name) is not None and name not in errors:
            problem = _text_problem(body[name], name, limit)
            if problem:
                errors[name] = [problem]
    values = {
        "status": status,
        "exit_code": exit_code,
        "output": body.get("output"),
        "error": body.get("error"),
        "reason": reason,
    }
    return values, errors


@csrf_exempt
@shed_load
def result(request, command_id):
    """The token is checked inside the report's one Redis call (services.report_result); the
    answers stay those of device_required: 401 before anything else for a bad token."""
    token = presented_token(request)
    if token is None:
        return token_invalid()
    parsed = _parse_report(request, command_id)
    if isinstance(parsed, JsonResponse):
        return refused(token, parsed)
    command_uuid, values = parsed
    reported = services.report_result(token=token, command_id=command_uuid, **values)
    if reported is None:
        return token_invalid()
    request.device_id = reported.device_id
    if reported.state is None:
        return error("No such command for this device.", "not_found", 404)
    return JsonResponse({"id": str(command_uuid), "status": reported.state})


def _parse_report(request, command_id) -> tuple[uuid.UUID, dict] | JsonResponse:
    if request.method != "POST":
        return _wrong_method("POST")
    body = read_json_object(request)
    if isinstance(body, JsonResponse):
        return body
    values, errors = _parse_result(body)
    if errors:
        return _invalid(errors)
    try:
        return uuid.UUID(str(command_id)), values
    except ValueError:
        return error("No such command for this device.", "not_found", 404)
