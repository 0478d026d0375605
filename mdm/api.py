"""Error shape shared by every API answer (PROTOCOL.md): {"detail", "code"[, "fields"]}, and the
JSON parser every DRF endpoint uses."""

import io
import re
from itertools import accumulate

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
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


# Deeper than any body this API takes (a command's params are a few levels): Python's json module
# recurses once per level, so `[[[[...` 100,000 deep raised RecursionError (a 500) on every DRF
# endpoint, the unauthenticated token endpoint included, and a body just under the interpreter's
# limit would recurse again in whatever walks it next (serializers, audit masking).
MAX_JSON_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without parsing it (brackets
    inside strings do not count). Linear, in C loops: a 1 MiB body takes a few milliseconds."""
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than MAX_JSON_DEPTH before parsing them:
    400 {"detail", "code": "invalid"}."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        too_deep = exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.", code="invalid")
        if json_depth(raw) > MAX_JSON_DEPTH:
            raise too_deep
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # cannot happen under the limit above; never a 500 if it did
            raise too_deep from None


__all__ = ["DepthLimitedJSONParser", "error", "exception_handler", "json_depth", "status"]
