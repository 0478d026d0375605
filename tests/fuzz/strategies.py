"""Hypothesis strategies for the device protocol (PROTOCOL.md v1.1): bodies shaped like the
protocol's, with any field's value swapped for a hostile one, and bodies that are hostile as a
whole. Hostile means: NUL, lone surrogates (as JSON escapes, the only way JSON carries them),
lengths around and far past each limit, huge and non-finite numbers (also as raw literals such as
1e309 that no Python value prints as), deep nesting, wrong types, invalid UTF-8, and bodies over
the 1 MiB limit.

A generated body is a `Body`: JSON text built from a value (with raw literals spliced in where the
value holds a `Raw`), or raw bytes. Credentials and command ids are drawn as labels that the test
resolves against the fleet it made (a valid token, another device's, a garbage one, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

ONE_MIB = 1024 * 1024


@dataclass(frozen=True)
class Raw:
    """A JSON literal written as is: numbers Python would never print (1e309, -0, 1E400)."""

    text: str


@dataclass(frozen=True)
class Oversize:
    """A body just over 1 MiB (built when sent: generating it through Hypothesis would be slow)."""

    extra: int


@dataclass(frozen=True)
class Nested:
    """`depth` nested arrays (or objects), under `key` or as the whole body."""

    depth: int
    key: str | None
    objects: bool


def to_bytes(value, ensure_ascii: bool = True) -> bytes:
    """JSON text of `value` with each Raw spliced in; lone surrogates come out as \\ud800 escapes."""
    if isinstance(value, Oversize):
        return b'{"apps": [], "pad": "' + b"a" * (ONE_MIB + value.extra) + b'"}'
    if isinstance(value, Nested):
        opening, closing = ('{"a":', "}") if value.objects else ("[", "]")
        inner = opening * value.depth + ("1" if value.objects else "") + closing * value.depth
        return (inner if value.key is None else json.dumps({value.key: "@@nested@@"}).replace('"@@nested@@"', inner)).encode()
    raws: list[str] = []

    def swap(v):
        if isinstance(v, Raw):
            raws.append(v.text)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=ensure_ascii, allow_nan=True)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"', raw)
    return text.encode("utf-8", "surrogatepass")


def weighted(*choices):
    """One of the strategies, drawn in proportion to its weight (st.one_of draws its branches
    evenly and folds repeated ones into one, so it cannot weight)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


# --- values --------------------------------------------------------------------------------------
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
# Around every text limit of the protocol (code points): 32, 64, 128, 256, 4,096, 64 KiB.
LIMITS = [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 4095, 4096, 4097, 65536, 65537, 200_000]


def _around_limit():
    return st.builds(lambda n, ch: ch * n, st.sampled_from(LIMITS), st.sampled_from(["a", "é", "\u4e2d", "\U0001f600", " "]))


def _with(middle):
    return st.builds(lambda a, m, b: a + m + b, st.text(max_size=6), middle, st.text(max_size=6))


# The v1.1 text rules' cases (NUL, lone surrogates, lengths) most often, then anything else.
hostile_text = weighted(
    (3, _with(st.just("\x00"))),
    (3, _with(st.sampled_from(LONE_SURROGATES))),
    (2, _around_limit()),
    (1, st.text(max_size=40)),
    (1, st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.characters(), max_size=20)),  # surrogates included
    (1, _with(st.sampled_from(["\ufeff", "\u202e", "\uffff", "\ufffe", "\u0085", "\u2028", "\r\n", "'", '"', "\\", "%00", "<script>"]))),
    (1, st.sampled_from(["", " ", "null", "true", "0", "-1", "NaN", "\x00", "\ud800\udc00", "\udc00\ud800"])),
)

huge_numbers = st.one_of(
    st.sampled_from([2**15, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**62, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 10**400, -(10**400)]),
    st.sampled_from([Raw("1e309"), Raw("-1e309"), Raw("1E400"), Raw("-0"), Raw("0.0"), Raw("1e-400"), Raw("123456789012345678901234567890.5")]),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN and Infinity as Python's json writes them
)

numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(width=64), huge_numbers)

scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)

json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=8,
)


def field_value(valid, text: bool = False):
    """Mostly a value the protocol allows, often something hostile instead: for a text field,
    hostile text most of all (the v1.1 rules), for any field, another type or structure."""
    if text:
        return weighted((3, valid), (3, hostile_text), (1, scalars), (1, json_values))
    return weighted((4, valid), (1, scalars), (1, json_values))


def fields_of(shapes: dict, text: set) -> dict:
    return {name: field_value(valid, text=name in text) for name, valid in shapes.items()}


def hostile_value(text: bool):
    return weighted((4, hostile_text), (1, scalars), (1, json_values)) if text else st.one_of(scalars, json_values)


def protocol_object(valid: dict, *, text: set, required: tuple = (), extra_keys: bool = True):
    """An object of the protocol's shape, three ways: valid but for one field whose value is
    hostile (the input that reaches deepest: a lone bad value in an otherwise good request),
    entirely valid, or any of its fields valid or hostile at once."""
    base = st.fixed_dictionaries({k: valid[k] for k in required}, optional={k: v for k, v in valid.items() if k not in required})

    def spoil(obj, bad):
        name, value = bad
        return {**obj, name: value}

    one_bad = st.builds(spoil, base, st.sampled_from(sorted(valid)).flatmap(
        lambda name: st.tuples(st.just(name), hostile_value(name in text))))
    any_bad = optional_fields(fields_of(valid, text), extra_keys=extra_keys)
    return st.one_of(one_bad, base, any_bad)


def _json_body(shaped):
    return st.builds(lambda value, ascii_only: ("json", value, ascii_only), shaped, st.booleans())


def _raw(body: bytes):
    return ("raw", body, True)


invalid_utf8 = st.sampled_from([
    b'{"a": "\xff"}', b'{"a": "\xc0\x80"}', b'{"a": "\xed\xa0\x80"}', b'{"a": "\xf4\x90\x80\x80"}',
    b"\xfe\xff\x00{\x00}", b"\xef\xbb\xbf{}", b'{"hardware_id": "\x80abc"}', b'{"battery_pct": 5, "wifi_ssid": "\xe2\x28\xa1"}',
])
malformed = st.sampled_from([
    b"", b" ", b"null", b"[]", b"1", b'"text"', b"{", b"{}}", b'{"a":}', b"{'a': 1}", b"NaN", b"\x00", b'{"a": 1, "a": 2}',
    b'{"\\u0000": 1}', b'{"a": "\\ud800"}', b'{"a": "\\udfff\\ud800"}', b'{"a": "\\u00"}',
])


def bodies(shaped):
    """Any request body: mostly the protocol's shape with hostile values, else hostile as a whole."""
    return weighted(
        (16, _json_body(shaped)),
        (1, _json_body(json_values)),
        (1, invalid_utf8.map(_raw)),
        (1, malformed.map(_raw)),
        (1, st.builds(Nested, st.sampled_from([50, 500, 1000, 5000, 100_000]), st.sampled_from([None, "a", "apps", "battery_pct", "status"]),
                      st.booleans()).map(lambda n: ("json", n, True))),
        (1, st.integers(min_value=1, max_value=64).map(lambda n: ("json", Oversize(n), True))),
        (1, st.binary(max_size=64).map(_raw)),
    )


def encode(body) -> bytes:
    kind, value, ascii_only = body
    if kind == "raw":
        return value
    return to_bytes(value, ensure_ascii=ascii_only or _has_surrogate(value))


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def optional_fields(fields: dict, extra_keys: bool = True):
    """A JSON object with any subset of `fields` (name -> value strategy), sometimes with unknown keys."""
    shaped = st.fixed_dictionaries({}, optional=fields)
    if not extra_keys:
        return shaped
    return st.builds(lambda d, extra: {**extra, **d}, shaped, st.dictionaries(hostile_text, json_values, max_size=2))


# --- the protocol's shapes -------------------------------------------------------------------------
def _date():
    return st.dates().map(lambda d: d.isoformat())


HEARTBEAT_FIELDS = {
    "battery_pct": st.integers(0, 100),
    "charging": st.booleans(),
    "battery_temp_c": st.floats(-60, 150),
    "mem_total_mb": st.integers(0, 2**31 - 1),
    "mem_avail_mb": st.integers(0, 2**31 - 1),
    "storage_total_mb": st.integers(0, 2**31 - 1),
    "storage_free_mb": st.integers(0, 2**31 - 1),
    "network_type": st.sampled_from(["wifi", "cellular", "ethernet", "vpn", "bluetooth", "other", "none"]),
    "wifi_ssid": st.one_of(st.none(), st.text(min_size=1, max_size=32)),
    "wifi_rssi": st.integers(-150, 0),
    "ip_address": st.one_of(st.ip_addresses().map(str), st.just("10.0.0.7")),
    "foreground_app": st.from_regex(r"[a-z]{2,8}(\.[a-z]{2,8}){1,3}", fullmatch=True),
    "uptime_s": st.integers(0, 2**40),
    "agent_version": st.from_regex(r"[0-9]\.[0-9]{1,2}\.[0-9]", fullmatch=True),
    "fcm_token": st.one_of(st.just(""), st.text("abcdefABCDEF0123456789:_-", min_size=10, max_size=200)),
    "apps_hash": st.text("0123456789abcdef", min_size=64, max_size=64),
    "device_time": st.integers(1_700_000_000, 1_900_000_000),
    "kids": st.lists(st.sampled_from(["k1", "k2", "k3", "k9"]), max_size=3),
    "bad_envelopes": st.integers(0, 10_000),
    # v1.1
    "os_version": st.sampled_from(["14", "13", "15"]),
    "security_patch": _date(),
    "pending_system_update": st.one_of(st.none(), st.fixed_dictionaries({"received_at": st.integers(0, 2**31), "security_patch": st.one_of(st.none(), _date())})),
    "policy_version": st.integers(0, 2**31),
    "lock_task_active": st.booleans(),
    "usage_access": st.booleans(),
    "battery_optimization_exempt": st.booleans(),
}
HEARTBEAT_FIELDS["kids"] = weighted((2, HEARTBEAT_FIELDS["kids"]), (1, st.lists(hostile_text, max_size=3)))
heartbeat = protocol_object(HEARTBEAT_FIELDS, text={"network_type", "wifi_ssid", "ip_address", "foreground_app", "agent_version", "fcm_token",
                                                    "apps_hash", "os_version", "security_patch"})

HARDWARE_IDS = ["fuzz-hw-0001", "fuzz-hw-0002", "fuzz-hw-0003", "FUZZ-HW-0001", " fuzz-hw-0001 "]
ENROLL_FIELDS = {
    "hardware_id": st.one_of(st.sampled_from(HARDWARE_IDS), st.text(min_size=1, max_size=128)),
    "serial": st.text(max_size=128),
    "model": st.sampled_from(["Pixel 7", "SimTab 10", "TC52"]),
    "manufacturer": st.sampled_from(["Google", "Zebra", "Samsung"]),
    "android_version": st.sampled_from(["12", "13", "14"]),
    "sdk_int": st.integers(1, 1000),
    "agent_version": st.just("1.0.0"),
    "fcm_token": st.text("abcdef0123456789:_-", max_size=64),
    "reenroll_request": st.one_of(st.uuids().map(str), st.text(max_size=40)),
}
enroll = protocol_object(ENROLL_FIELDS, text=set(ENROLL_FIELDS) - {"sdk_int"}, required=("hardware_id",))

APP_FIELDS = {
    "package": st.from_regex(r"[a-z]{2,8}(\.[a-z]{2,8}){1,3}", fullmatch=True),
    "version_name": st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True),
    "version_code": st.integers(0, 2**63 - 1),
    "system": st.booleans(),
    "enabled": st.booleans(),
}
app = protocol_object(APP_FIELDS, text={"package", "version_name"}, required=("package",), extra_keys=False)
good_app = st.fixed_dictionaries({k: APP_FIELDS[k] for k in ("package",)}, optional={k: v for k, v in APP_FIELDS.items() if k != "package"})
inventory = st.one_of(
    st.builds(lambda apps, bad, at: {"apps": apps[:at] + [bad] + apps[at:]}, st.lists(good_app, max_size=4), app, st.integers(0, 4)),
    st.fixed_dictionaries({"apps": st.lists(st.one_of(app, json_values), max_size=6)}),
    st.fixed_dictionaries({"apps": st.sampled_from([5001, 5000]).map(lambda n: [{"package": f"p.p{i}"} for i in range(n)])}),
    optional_fields({"apps": json_values}),
)

RESULT_FIELDS = {
    "exit_code": st.integers(-(2**31), 2**31 - 1),
    "output": st.text(max_size=64),
    "error": st.text(max_size=64),
    "reason": st.sampled_from(["wrong_device", "expired", "unsupported_type", "not_allowed", "bad_params"]),
}
RESULT_FIELDS["status"] = st.sampled_from(["received", "running", "succeeded", "failed", "rejected"])
result = protocol_object(RESULT_FIELDS, text={"status", "output", "error", "reason"}, required=("status",))

# --- everything around the body --------------------------------------------------------------------
# Labels resolved by the test: "valid" (the fuzz device's token), "other" (another device's),
# "wrong_secret" (the fuzz device's token id with another secret), "garbage", "none", "bearer" (an
# admin's JWT in the wrong scheme), "huge".
device_credentials = st.sampled_from(["valid", "other", "wrong_secret", "garbage", "none", "bearer", "huge"])
enroll_credentials = st.sampled_from(["key", "expired_key", "exhausted_key", "garbage", "none", "huge", "key_and_token"])
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])


def variants(right: str, credentials=device_credentials):
    """How a case is sent a second time: (method, trailing slash, credentials label, content type)."""
    return st.tuples(st.sampled_from([right, "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]), st.sampled_from(["", "/"]),
                     credentials, content_types)


pull_query = st.one_of(
    st.just(""),
    st.builds(lambda v: f"?limit={v}", st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(["", "abc", "1e3", "%00", "25.0", "0x10", "1" * 400]))),
    st.builds(lambda a, b: f"?limit={a}&limit={b}", st.integers(1, 200), st.integers(-5, 5)),
)
# Resolved by the test: "fresh" (a command issued for the device just now and served to it, so its
# report goes through the result write-behind), "known" (one issued earlier), "others" (another
# device's), "unknown" (a random UUID), or a literal path segment.
command_ids = st.one_of(
    st.sampled_from(["fresh"] * 12 + ["known", "others", "unknown"]),
    st.sampled_from(["not-a-uuid", "%00", "00000000-0000-0000-0000-000000000000", "7C9E6679-7425-40DE-944B-E07FC1F90AE7", "x" * 300, "%ED%A0%80"]),
)
