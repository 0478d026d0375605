"""The device API (`/api/v1/device/*`) served beside Django's middleware stack, not through it.

The device endpoints are plain views that need none of the console's middleware: no session,
CSRF, auth, messages, htmx or static files, and the URL tree's ten-odd includes are walked for
nothing. In-process, a heartbeat measured 426 µs of CPU through the full stack and 231 µs this
way (docs/performance.md), which is most of what a 2-core server spends per heartbeat.

What the device path keeps, the same as the full stack gives it:
- the same view functions, resolved from the project's own URL patterns (no second route table);
- Django's request/response cycle: `request_started`/`request_finished` (database connections go
  back to the pool), an unhandled exception becomes Django's 500 with the usual logging;
- ALLOWED_HOSTS (400 otherwise) and SECURE_SSL_REDIRECT (such requests take the full stack);
- the request log line (when worth reading: mdm.requestlog) and a request-duration histogram by
  endpoint and status
  (`mdm_device_request_seconds`: device traffic is there, not in django-prometheus's
  `django_http_*` series, which count the console and REST API).

Used by the WSGI application (granian in docker-compose, the bench); `make run` serves ASGI
(daphne) through the ordinary stack, where the same views answer the same way."""

import logging
import time

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.urls import URLResolver, get_resolver, set_script_prefix
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern

from mdm import metrics, requestlog
from mdm.api import error
from mdm.middleware import request_fields

PREFIX = "/api/v1/device/"
logger = logging.getLogger("mdm.request")


def _device_patterns(resolver, prefix=""):
    """The project's URL patterns under api/v1/device/, flattened (routes as the project has them)."""
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _device_patterns(entry, route)
        elif route.startswith("api/v1/device/"):
            yield route, entry


def device_resolver() -> URLResolver:
    from django.urls import path

    patterns = [path(route[len("api/v1/"):], entry.callback, name=entry.name)
                for route, entry in _device_patterns(get_resolver())]
    return URLResolver(RegexPattern(r"^/api/v1/"), patterns)


class DeviceFastPath:
    """WSGI application: `/api/v1/device/*` straight to its view, everything else to Django."""

    def __init__(self, django_app: WSGIHandler):
        self.django_app = django_app
        self.resolver = device_resolver()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.django_app(environ, start_response)
        try:
            match = self.resolver.resolve(path)
        except Resolver404:
            return self.django_app(environ, start_response)
        request = WSGIRequest(environ)
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return self.django_app(environ, start_response)
        return self.serve(request, match, environ, start_response)

    @staticmethod
    def endpoint(match) -> str:
        """The route without its trailing slash: "device/commands/<str:command_id>/result"."""
        return match.route.removeprefix("^/api/v1/").rstrip("/")

    def serve(self, request, match, environ, start_response):
        started = time.perf_counter()
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        request.resolver_match = match
        try:
            request.get_host()
        except DisallowedHost:
            response = error("Host not allowed.", "bad_request", 400)
        else:
            try:
                response = match.func(request, *match.args, **match.kwargs)
            except Exception as exc:  # what Django's handler does: a logged 500 (or 400 for bad requests)
                response = response_for_exception(request, exc)
        response._handler_class = WSGIHandler  # close() sends request_finished as Django's own would
        response.setdefault("X-Content-Type-Options", "nosniff")
        if not response.streaming and not response.has_header("Content-Length"):  # as CommonMiddleware does
            response.headers["Content-Length"] = str(len(response.content))
        duration = time.perf_counter() - started
        metrics.DEVICE_REQUEST_SECONDS.labels(self.endpoint(match), str(response.status_code)).observe(duration)
        if logger.isEnabledFor(logging.INFO) and requestlog.log_device_request(
                getattr(request, "device_id", None), response.status_code, duration):
            logger.info("request", extra=request_fields(request, response.status_code, duration))
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return response
