"""Protocol v1.1 text rules (PROTOCOL.md, "Text"): what a device may send as a string.

A string is acceptable when it is valid Unicode without U+0000 and without lone surrogates, and
within its field's length in code points. PostgreSQL refuses both NUL and lone surrogates in text
and jsonb, so a value that breaks these rules must never reach a queue or a table: one such value
in a batch used to stop every later flush (issue 14).

Python's json module accepts `"\\u0000"` and an unpaired `"\\ud800"` escape; a paired escape
comes back as one code point, so any code point in U+D800..U+DFFF left in a decoded string is a
lone surrogate.
"""

from __future__ import annotations

import re
from typing import Any

# Lengths in code points (PROTOCOL.md v1.1); every other device string: DEFAULT_MAX.
MAX_LENGTHS = {"hardware_id": 128, "error": 4096, "fcm_token": 4096, "output": 64 * 1024}
DEFAULT_MAX = 256

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def max_length(field: str) -> int:
    return MAX_LENGTHS.get(field, DEFAULT_MAX)


def forbidden_character(value: str) -> str | None:
    """"NUL" or "a lone surrogate" when the string holds one, else None."""
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    return "NUL" if found.group() == "\x00" else "a lone surrogate"


def problem(value: Any, field: str, *, max_len: int | None = None) -> str | None:
    """Why `value` is not acceptable text for `field`, in words for a `fields` message; None when
    it is. `max_len` overrides the protocol's length for fields whose own rule is tighter."""
    if not isinstance(value, str):
        return f"{field}: must be text."
    bad = forbidden_character(value)
    if bad is not None:
        return f"{field}: must not contain {bad}."
    limit = max_len if max_len is not None else max_length(field)
    if len(value) > limit:
        return f"{field}: at most {limit} characters."
    return None


def is_clean(value: str) -> bool:
    """No NUL, no lone surrogate (length not checked)."""
    return _FORBIDDEN.search(value) is None


def clean_deep(value: Any) -> bool:
    """True when every string in a JSON value (keys included) is clean; for values stored as
    jsonb, where one bad string anywhere fails the whole write."""
    if isinstance(value, str):
        return is_clean(value)
    if isinstance(value, dict):
        return all(is_clean(k) and clean_deep(v) for k, v in value.items())
    if isinstance(value, list):
        return all(clean_deep(v) for v in value)
    return True


def loggable(value: str, limit: int = 200) -> str:
    """A form of untrusted text safe to put in a log line or an error message: forbidden
    characters escaped, length capped (never the raw value: PROTOCOL.md v1.1)."""
    text = value[:limit]
    text = _FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text + ("…" if len(value) > limit else "")
