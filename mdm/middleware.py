import logging
import time

from django.http import Http404

from mdm import requestlog
from mdm.clientip import client_ip
from mdm.text import loggable

logger = logging.getLogger("mdm.request")

# URL parameters that are credentials: Django's password-reset link /accounts/reset/<uidb64>/<token>/.
SECRET_URL_KWARGS = frozenset({"uidb64", "token"})
# Where a path that did not resolve (a 404, a missing-slash redirect) may still hold one.
SECRET_PATH_PREFIXES = ("/accounts/reset/",)
MASK = "***"


def loggable_path(request) -> str:
    """The path for a log line: credential segments masked, never the query string (which may
    carry a signature or a key), and in loggable form (mdm.text)."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is not None:
        secrets = {str(v) for k, v in match.kwargs.items() if k in SECRET_URL_KWARGS}
        if secrets:
            path = "/".join(MASK if segment in secrets else segment for segment in path.split("/"))
    else:
        for prefix in SECRET_PATH_PREFIXES:
            if path.startswith(prefix) and len(path) > len(prefix):
                path = prefix + MASK
                break
    return loggable(path, limit=512)


def request_fields(request, status: int, duration_s: float, user_id=None) -> dict:
    """The fields of the one request line (shared with the device fast path, mdm.fastpath)."""
    return {
        "method": request.method,
        "path": loggable_path(request),
        "status": status,
        "duration_ms": round(duration_s * 1000, 2),
        "ip": client_ip(request),
        "user_id": user_id,
        "device_id": getattr(request, "device_id", None),
    }


class RequestLogMiddleware:
    """One JSON line per request: method, path (secrets masked), status, duration, client IP and
    who asked (a user id or a device id; device authentication sets request.device_id)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if request.path in ("/metrics", "/healthz"):
            return response
        duration = time.perf_counter() - started
        if request.path.startswith("/api/v1/device/") and not requestlog.log_device_request(
                getattr(request, "device_id", None), response.status_code, duration):
            return response  # the ASGI path (make run) keeps the same rule as the fast path
        user = getattr(request, "user", None)
        user_id = str(user.pk) if user is not None and user.is_authenticated else None
        logger.info("request", extra=request_fields(request, response.status_code, duration, user_id))
        return response


class UnnamablePathMiddleware:
    """A path holding a NUL names nothing: no identifier, tag or group name can contain one (mdm.text;
    PostgreSQL text cannot even hold it, so the lookup itself would fail with a 500). Answered 404
    before any view looks it up, on every route at once (JSON under /api/, mdm.errors)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info:
            raise Http404("No such path.")
        return self.get_response(request)
