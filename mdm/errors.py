"""Django's error pages for what no view answered (an unknown path, a body over the limit, an
unhandled exception): under /api/ they are JSON `{"detail", "code"}` like every other API answer
(PROTOCOL.md: a non-2xx answer has that body), elsewhere the console's pages (templates/400.html,
403.html, 404.html in the console's frame with a way back; 500.html standing alone, since it is
rendered with no request, session or database)."""

from django.core.exceptions import RequestDataTooBig
from django.views import defaults

from mdm.api import error

API_PREFIX = "/api/"


def _api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if not _api(request):
        return defaults.bad_request(request, exception, template_name)
    if isinstance(exception, RequestDataTooBig):
        return error("Request body over 1 MiB.", "too_large", 413)
    return error("Bad request.", "invalid", 400)


def permission_denied(request, exception, template_name=defaults.ERROR_403_TEMPLATE_NAME):
    if not _api(request):
        return defaults.permission_denied(request, exception, template_name)
    return error("You do not have permission to perform this action.", "permission_denied", 403)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if not _api(request):
        return defaults.page_not_found(request, exception, template_name)
    return error("Not found.", "not_found", 404)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if not _api(request):
        return defaults.server_error(request, template_name)
    return error("Internal server error.", "server_error", 500)
