"""GET /enrollment/provision.status: what the provisioning scripts poll until the device shows up.
It answers only about devices enrolled with the key asked with, and nothing but a state."""

import pytest

from devices.models import Device

pytestmark = pytest.mark.django_db


def _status(client, key, hardware_id="HW-1"):
    return client.get("/enrollment/provision.status", {"hardware_id": hardware_id}, HTTP_X_ADMIN_KEY=key)


def test_a_device_goes_from_not_enrolled_to_enrolled_to_online(client, key, enroll, heartbeat):
    assert _status(client, key).json() == {"state": "not_enrolled", "detail": "Not enrolled yet."}
    token = enroll(key).json()["device_token"]
    assert _status(client, key).json()["state"] == "enrolled"
    heartbeat(token, battery_pct=50)
    answer = _status(client, key)
    assert answer.status_code == 200 and answer.json() == {"state": "online", "detail": "Enrolled and online."}
    assert answer["Cache-Control"] == "no-store"


def test_a_device_enrolled_with_another_key_is_not_disclosed(client, make_key, enroll):
    mine, theirs = make_key("mine"), make_key("theirs")
    enroll(theirs)
    assert _status(client, mine).json()["state"] == "not_enrolled"
    assert set(_status(client, theirs).json()) == {"state", "detail"}  # no id, name or telemetry


def test_a_reenrollment_waiting_for_approval_says_so(client, key, enroll, heartbeat):
    heartbeat(enroll(key).json()["device_token"])  # a used token: the next enroll is no retry
    assert enroll(key).status_code == 409  # a factory-reset device, no token: an admin must approve
    answer = _status(client, key).json()
    assert answer["state"] == "waiting_approval" and "approval" in answer["detail"]


def test_a_deleted_device_is_retired(client, key, enroll):
    enroll(key)
    Device.objects.filter(hardware_id="HW-1").update(deleted_at="2026-01-01T00:00:00Z")
    assert _status(client, key).json()["state"] == "retired"


def test_a_used_up_key_still_answers_and_a_revoked_or_unknown_one_does_not(client, make_key, enroll):
    from enrollment.models import EnrollmentKey
    from enrollment.services import keys

    key = make_key("once", max_uses=1)
    enroll(key)
    assert _status(client, key).json()["state"] == "enrolled"
    keys.revoke_enrollment_key(actor=None, key=EnrollmentKey.objects.get(name="once"))
    response = _status(client, key)
    assert response.status_code == 401 and response.json()["code"] == "key_invalid"
    assert _status(client, "mdmk_nope").status_code == 401
    assert client.get("/enrollment/provision.status", {"hardware_id": "HW-1"}).status_code == 401


@pytest.mark.parametrize("hardware_id", ["", "   ", "x" * 129, "a\x00b"])
def test_a_bad_hardware_id_is_a_400_naming_it(client, key, hardware_id):
    response = _status(client, key, hardware_id)
    assert response.status_code == 400 and "hardware_id" in response.json()["fields"]


def test_polling_is_rate_limited_per_address(client, key, settings):
    settings.PROVISION_STATUS_RATE_LIMIT = "3/m"
    codes = [_status(client, key).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    assert int(_status(client, key)["Retry-After"]) >= 1
