import logging
import time

logger = logging.getLogger("mdm.request")


class RequestLogMiddleware:
    """One JSON line per request: method, path, status, duration, and who asked (a user id or a
    device id; device authentication sets request.device_id)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if request.path in ("/metrics", "/healthz"):
            return response
        user = getattr(request, "user", None)
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "user_id": str(user.pk) if user is not None and user.is_authenticated else None,
                "device_id": getattr(request, "device_id", None),
            },
        )
        return response
