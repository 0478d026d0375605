"""The JSON parser of every DRF endpoint (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): DRF's own,
with a depth limit checked before parsing."""

import io
import re
from itertools import accumulate

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

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
