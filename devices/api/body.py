"""Request-body handling shared by the lean device endpoints (enroll, heartbeat, inventory)."""

import json

from django.conf import settings
from django.http import JsonResponse

from mdm.api import error

MAX_BODY = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # 1 MiB (PROTOCOL.md)


def too_large() -> JsonResponse:
    return error("Request body over 1 MiB.", "too_large", 413)


def read_json_object(request) -> dict | JsonResponse:
    """The body as a JSON object, or the error answer to send: 413 too_large over 1 MiB (by
    Content-Length or by what was actually read: chunked bodies have no length), 400 invalid for
    anything that is not a JSON object."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error("Bad Content-Length.", "invalid", 400)
    if declared > MAX_BODY:
        return too_large()
    raw = request.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return too_large()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return error("The body must be a JSON object.", "invalid", 400)
    if not isinstance(data, dict):
        return error("The body must be a JSON object.", "invalid", 400)
    return data


def method_not_allowed(allowed: str) -> JsonResponse:
    return error(f"Use {allowed}.", "method_not_allowed", 405, {"Allow": allowed})
