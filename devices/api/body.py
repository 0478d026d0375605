"""Request-body handling shared by the lean device endpoints (enroll, heartbeat, inventory, results)."""

import json
import logging
from functools import wraps

import redis
from django.conf import settings
from django.db import OperationalError
from django.http import JsonResponse

from mdm.api import error

MAX_BODY = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # 1 MiB (PROTOCOL.md)
SHED_RETRY_AFTER_S = 2
logger = logging.getLogger(__name__)


def shed_load(view):
    """Overload is answered 503 busy + Retry-After (PROTOCOL.md load shedding), never a 5xx
    error: an exhausted Redis or database connection pool, or either briefly unreachable."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (redis.RedisError, OperationalError) as exc:
            logger.warning("device request shed", extra={"path": request.path, "error": type(exc).__name__})
            return error("Server busy, retry later.", "busy", 503, {"Retry-After": str(SHED_RETRY_AFTER_S)})

    return wrapped


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
        # Decoded here, strictly: json.loads on bytes would also take UTF-16 and UTF-32, and a
        # surrogate smuggled in UTF-8 bytes must fail here, not in a flush (PROTOCOL.md v1.1: a
        # body that is not valid UTF-8 is not a JSON object). Nesting deeper than the parser
        # goes is refused the same way (RecursionError), never a 500.
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return error("The body must be a JSON object in UTF-8.", "invalid", 400)
    if not isinstance(data, dict):
        return error("The body must be a JSON object.", "invalid", 400)
    return data


def method_not_allowed(allowed: str) -> JsonResponse:
    return error(f"Use {allowed}.", "method_not_allowed", 405, {"Allow": allowed})
