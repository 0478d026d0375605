"""Arbitrary JSON to POST /api/v1/enroll (issue 14, finding 7): never a 5xx; every refusal a
documented 4xx with `detail` and `code`; what is accepted is stored exactly as sent."""

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.models import Device
from devices.tests.factories import DeviceFactory
from mdm import text

pytestmark = pytest.mark.django_db

ENROLL_FIELDS = ("hardware_id", "serial", "model", "manufacturer", "android_version", "sdk_int", "agent_version",
                 "fcm_token", "reenroll_request")
STORED = ("serial", "model", "manufacturer", "android_version", "agent_version", "fcm_token")
# PROTOCOL.md: the codes an enrollment may be refused with, by status.
DOCUMENTED = {
    400: {"invalid"},
    401: {"key_invalid"},
    403: {"key_expired", "key_exhausted", "device_retired"},
    409: {"reenroll_needs_approval"},
    413: {"too_large"},
    429: {"rate_limited"},
}

chars = st.characters(exclude_categories=())  # surrogates included
poison = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])
texts = st.one_of(
    st.text(chars, max_size=40),
    st.builds(lambda a, p, b: a + p + b, st.text(chars, max_size=8), poison, st.text(chars, max_size=8)),
    st.text("aé€😀 ", min_size=100, max_size=700),  # around every length limit, in code points
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
clean_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
# Mostly plausible values, so that enrollments, re-enrollments (HW-A and HW-B are known devices)
# and request ids get through to the service; sometimes anything at all.
VALID = {
    "hardware_id": st.one_of(st.sampled_from(["HW-A", "HW-B", "HW-C"]), st.text(string.printable, min_size=1, max_size=128)),
    "sdk_int": st.integers(1, 40),
    "reenroll_request": st.one_of(st.uuids().map(str), clean_text),
}
fields = {name: st.one_of(*[VALID.get(name, clean_text)] * 3, json_values) for name in ENROLL_FIELDS}
bodies = st.fixed_dictionaries({"hardware_id": fields["hardware_id"]}, optional={k: v for k, v in fields.items() if k != "hardware_id"}).flatmap(
    lambda d: st.dictionaries(st.text(string.ascii_lowercase, max_size=6), json_values, max_size=2).map(lambda extra: {**extra, **d})
)


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(bodies, bodies, bodies, st.binary(max_size=64)))
def test_any_body_is_answered_by_the_protocol(client, key, settings, body):
    settings.ENROLL_RATE_LIMIT = "1000000/m"
    for hardware_id in ("HW-A", "HW-B"):  # known devices: enrolling them again is a re-enrollment
        if not Device.objects.filter(hardware_id=hardware_id).exists():
            DeviceFactory(hardware_id=hardware_id)
    hardware_id = body.get("hardware_id") if isinstance(body, dict) else None
    new = text.problem(hardware_id, "hardware_id") is None and not Device.objects.filter(hardware_id=hardware_id.strip()).exists()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()  # ensure_ascii: lone surrogates as escapes
    response = client.post("/api/v1/enroll", data=raw, content_type="application/json", HTTP_X_ADMIN_KEY=key)
    assert response.status_code < 500, response.content
    answer = response.json()
    if response.status_code in (200, 201):
        if new:  # (a repeat within 10 minutes is a retry: answered as the first, nothing stored)
            device = Device.objects.get(pk=answer["device_id"])
            for name in STORED:
                if isinstance(body.get(name), str):
                    assert getattr(device, name) == body[name]  # stored exactly, never cut
        return
    assert answer["code"] in DOCUMENTED[response.status_code], answer
    assert isinstance(answer["detail"], str) and answer["detail"]
    if response.status_code == 400 and isinstance(body, dict):
        assert answer["fields"] and set(answer["fields"]) <= set(ENROLL_FIELDS), answer
        for name, messages in answer["fields"].items():
            assert messages and all(text.is_clean(m) for m in messages)  # never echoes the poison
    if response.status_code == 409:
        assert isinstance(answer["reenroll_request"], str)
