"""Error shape shared by every API answer (PROTOCOL.md): {"detail", "code"[, "fields"]}. The JSON
parser every DRF endpoint uses is mdm.parsers (a module of its own: DRF imports it while its views
module loads, which this one imports)."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

from mdm import text


def exception_handler(exc, context):
    # DRF turns Django's Http404 and PermissionDenied into its own exceptions inside its handler;
    # do it first so that they get their `code` like the rest.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "detail": _first_message(fields) or "Invalid input.",
            "code": "invalid",
            "fields": fields,
        }
    elif isinstance(exc, exceptions.APIException):
        detail, code = exc.detail, exc.get_codes()
        if isinstance(detail, dict):  # e.g. simplejwt: {"detail": ..., "code": ..., "messages": [...]}
            detail, code = detail.get("detail", "Request failed."), detail.get("code", "error")
        if isinstance(code, (list, dict)):
            code = "error"
        response.data = {"detail": str(detail), "code": _CODE_ALIASES.get(str(code), str(code))}
    if isinstance(exc, exceptions.Throttled) and exc.wait:
        response["Retry-After"] = str(int(exc.wait) + 1)
    return response


_CODE_ALIASES = {"throttled": "rate_limited", "parse_error": "invalid"}


def _first_message(fields) -> str | None:
    for name, messages in fields.items():
        if isinstance(messages, list) and messages and isinstance(messages[0], str):
            return f"{name}: {messages[0]}"
        if isinstance(messages, str):
            return f"{name}: {messages}"
    return None


def error(detail: str, code: str, status_code: int, headers: dict | None = None, **extra) -> JsonResponse:
    """A protocol error answer built without DRF (for the lean device path)."""
    response = JsonResponse({"detail": detail, "code": code, **extra}, status=status_code)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


__all__ = ["error", "exception_handler", "status"]


class NameRelatedField(serializers.SlugRelatedField):
    """A SlugRelatedField whose lookup value is text a database can hold: a name with a NUL or a
    lone surrogate names nothing (mdm.text) and is a 400 naming the field, never a lookup that
    PostgreSQL refuses with a 500."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not text.is_clean(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=text.loggable(data))
        return super().to_internal_value(data)
