"""Bad input to POST /api/v1/enroll: a clear 4xx with {"detail", "code"}, never a 5xx."""

import json

import pytest

from devices.models import Device
from enrollment.models import EnrollmentKey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "hardware_id"),
        ({"hardware_id": ""}, "hardware_id"),
        ({"hardware_id": "   "}, "hardware_id"),
        ({"hardware_id": "x" * 129}, "hardware_id"),
        ({"hardware_id": 12345}, "hardware_id"),
        ({"hardware_id": None}, "hardware_id"),
        ({"hardware_id": "HW", "sdk_int": "34"}, "sdk_int"),
        ({"hardware_id": "HW", "sdk_int": True}, "sdk_int"),
        ({"hardware_id": "HW", "sdk_int": 0}, "sdk_int"),
        ({"hardware_id": "HW", "model": ["Pixel"]}, "model"),
        ({"hardware_id": "HW", "serial": "s" * 129}, "serial"),
        ({"hardware_id": "HW", "fcm_token": 42}, "fcm_token"),
        # PROTOCOL.md v1.1 text rules (issue 14, finding 7: these were 500s)
        ({"hardware_id": "HW\x00"}, "hardware_id"),
        ({"hardware_id": "HW\ud800"}, "hardware_id"),
        ({"hardware_id": "é" * 129}, "hardware_id"),
        ({"hardware_id": "HW", "model": "Pixel\udc00"}, "model"),
        ({"hardware_id": "HW", "serial": "a\x00b"}, "serial"),
        ({"hardware_id": "HW", "manufacturer": "\ud83d"}, "manufacturer"),
        ({"hardware_id": "HW", "android_version": "1" * 33}, "android_version"),
        ({"hardware_id": "HW", "agent_version": "\x00"}, "agent_version"),
        ({"hardware_id": "HW", "fcm_token": "f" * 4097}, "fcm_token"),
        ({"hardware_id": "HW", "fcm_token": "f\ud800"}, "fcm_token"),
        ({"hardware_id": "HW", "reenroll_request": 42}, "reenroll_request"),
        ({"hardware_id": "HW", "reenroll_request": "\x00"}, "reenroll_request"),
        ({"hardware_id": "HW", "reenroll_request": "r" * 257}, "reenroll_request"),
    ],
)
def test_an_invalid_field_is_a_400_naming_it(client, key, body, field):
    response = client.post("/api/v1/enroll", data=json.dumps(body), content_type="application/json", HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid" and field in data["fields"] and data["detail"]
    assert not Device.objects.exists()
    assert EnrollmentKey.objects.get().uses == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b""])
def test_a_body_that_is_not_a_json_object_is_400_invalid(client, key, raw):
    response = client.post("/api/v1/enroll", data=raw, content_type="application/json", HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_body_over_one_mebibyte_is_413_too_large(client, key):
    body = json.dumps({"hardware_id": "HW", "model": "x" * (1024 * 1024)})
    response = client.post("/api/v1/enroll", data=body, content_type="application/json", HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_unknown_fields_are_ignored(enroll, key):
    assert enroll(key, "HW-U", colour="blue", nested={"a": 1}).status_code == 201


def test_a_get_is_405_in_json(client):
    response = client.get("/api/v1/enroll")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_the_fcm_token_is_stored(enroll, key):
    enroll(key, "HW-FCM", fcm_token="fcm-abc")
    assert Device.objects.get(hardware_id="HW-FCM").fcm_token == "fcm-abc"


def test_enrollments_are_counted_by_result(enroll, key):
    from mdm.metrics import ENROLLMENTS

    before_created = ENROLLMENTS.labels("created")._value.get()
    before_invalid = ENROLLMENTS.labels("key_invalid")._value.get()
    enroll(key, "HW-M")
    enroll("wrong")
    assert ENROLLMENTS.labels("created")._value.get() == before_created + 1
    assert ENROLLMENTS.labels("key_invalid")._value.get() == before_invalid + 1


def test_lengths_are_code_points_and_what_is_admitted_is_stored_whole(enroll, key):
    """hardware_id 128 and the other fields their column's size (at most the protocol's 256);
    fcm_token 512 while its column holds 512 (the protocol's 4,096 would not fit)."""
    from enrollment.api.device_views import MAX_LENGTHS

    assert MAX_LENGTHS["fcm_token"] == min(4096, Device._meta.get_field("fcm_token").max_length)
    body = {name: "é" * MAX_LENGTHS[name] for name in ("serial", "model", "manufacturer", "android_version", "agent_version")}
    response = enroll(key, "😀" * 128, fcm_token="f" * MAX_LENGTHS["fcm_token"], **body)
    assert response.status_code == 201
    device = Device.objects.get()
    assert device.hardware_id == "😀" * 128 and device.fcm_token == "f" * MAX_LENGTHS["fcm_token"]
    assert {name: getattr(device, name) for name in body} == body


def test_a_refusal_never_echoes_the_bad_text(client, key):
    response = client.post("/api/v1/enroll", data=json.dumps({"hardware_id": "x\x00<script>"}),
                           content_type="application/json", HTTP_X_ADMIN_KEY=key)
    assert response.status_code == 400
    assert "\\u0000" not in response.content.decode() and "<script>" not in response.content.decode()
