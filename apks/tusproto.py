"""The header grammar of tus 1.0 (https://tus.io/protocols/resumable-upload), parsed strictly:
pure functions, fuzzed by apks/tests/test_tus_fuzz.py. Anything malformed is a ValueError whose
message names the header, for the 400 answer."""

import base64
import binascii
import re

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
# Upload-Length / Upload-Offset: ASCII digits only, at most 19 (int() would take "+1", " 1",
# "1_000" and other scripts' digits, and 4,300+ digits raise).
_NUMBER = re.compile(r"[0-9]{1,19}", re.ASCII)
_KEY = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}", re.ASCII)
MAX_METADATA = 16 * 1024
TEXT_LIMITS = {"filename": 255, "channel": 32, "notes": 10_000}


def number(value: str | None, name: str) -> int:
    if value is None:
        raise ValueError(f"{name} is required.")
    if not _NUMBER.fullmatch(value.strip()):
        raise ValueError(f"{name} must be a non-negative integer.")
    result = int(value.strip())
    if result >= 2**63:
        raise ValueError(f"{name} is out of range.")
    return result


def _text(key: str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")  # strict: lone surrogates and invalid bytes fail here
    except UnicodeDecodeError:
        raise ValueError(f"Upload-Metadata: {key} is not UTF-8.") from None
    if "\x00" in text:
        raise ValueError(f"Upload-Metadata: {key} must not contain NUL.")
    limit = TEXT_LIMITS.get(key)
    if limit is not None and len(text) > limit:
        raise ValueError(f"Upload-Metadata: {key} has more than {limit} characters.")
    return text


def metadata(header: str | None) -> dict:
    """Upload-Metadata: comma-separated `key base64value` (or a bare key). Keys this server uses
    (filename, channel, notes) are kept; others (tus-js-client sends filetype, name, ...) are
    checked for form and dropped."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA:
        raise ValueError(f"Upload-Metadata is longer than {MAX_METADATA} characters.")
    out: dict = {}
    for pair in header.split(","):
        pair = pair.strip()
        key, _, value = pair.partition(" ")
        if not _KEY.fullmatch(key):
            raise ValueError("Upload-Metadata: keys are ASCII tokens without spaces or commas.")
        if key in out:
            raise ValueError(f"Upload-Metadata: {key} is given twice.")
        try:
            raw = base64.b64decode(value.strip(), validate=True) if value.strip() else b""
        except (binascii.Error, ValueError):
            raise ValueError(f"Upload-Metadata: the value of {key} is not base64.") from None
        if key in TEXT_LIMITS:
            out[key] = _text(key, raw)
        else:
            out.setdefault("_other", []).append(key)
    out.pop("_other", None)
    return out


def encode_metadata(values: dict) -> str:
    return ",".join(f"{k} {base64.b64encode(str(v).encode()).decode()}" for k, v in values.items())
