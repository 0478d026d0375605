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
from devices import tokens
from devices.auth import device_required, presented_token, token_invalid
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


def _parse_result(body: dict) -> tuple[dict, dict]:
    errors: dict = {}
    status = body.get("status")
    if status not in DEVICE_STATUSES:
        errors["status"] = [f"One of {', '.join(DEVICE_STATUSES)}."]
    reason = body.get("reason")
    if status == DeliveryState.REJECTED and reason not in REJECT_REASONS:
        errors["reason"] = [f"A rejection needs a reason: one of {', '.join(REJECT_REASONS)}."]
    elif reason is not None and not isinstance(reason, str):
        errors["reason"] = ["Must be a string."]
    exit_code = body.get("exit_code")
    if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int) or not -(2**31) <= exit_code < 2**31):
        errors["exit_code"] = ["A 32-bit integer or null."]
    for name in ("output", "error"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors[name] = ["Must be a string."]
    values = {
        "status": status,
        "exit_code": exit_code,
        "output": body.get("output"),
        "error": body.get("error"),
        "reason": reason if isinstance(reason, str) else None,
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
        return parsed if tokens.verify(token) else token_invalid()
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
