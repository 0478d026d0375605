"""POST /api/v1/enroll, rule by rule (PROTOCOL.md)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from commands import device_hooks
from devices.models import Device, DeviceStatus, HeartbeatSample
from devices.tests.factories import DeviceGroupFactory
from enrollment.models import EnrollmentKey
from mdm.models import AuditEvent

# Transactional: token revocation happens on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_device_enrolls_with_201_and_a_complete_answer(key, enroll):
    response = enroll(key, "HW-NEW", model="Pixel 8", manufacturer="Google", android_version="14", sdk_int=34)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"device_id", "device_token", "heartbeat_interval_s", "command_keys", "server_time"}
    assert body["heartbeat_interval_s"] == 30
    assert isinstance(body["server_time"], int)
    assert body["command_keys"] and {"kid", "key"} <= set(body["command_keys"][0])
    device = Device.objects.get(hardware_id="HW-NEW")
    assert str(device.pk) == body["device_id"]
    assert (device.model, device.manufacturer, device.android_version, device.sdk_int) == ("Pixel 8", "Google", "14", 34)
    assert DeviceStatus.objects.filter(device=device).exists()


def test_the_token_it_returns_authenticates_heartbeats(key, enroll, heartbeat):
    token = enroll(key, "HW-T").json()["device_token"]
    assert heartbeat(token, battery_pct=50).status_code == 200


def test_the_token_is_kept_only_as_a_bcrypt_hash(key, enroll):
    token = enroll(key, "HW-H").json()["device_token"]
    device = Device.objects.get(hardware_id="HW-H")
    assert device.token_hash.startswith("$2") and token.split(".", 1)[1] not in device.token_hash


def test_the_path_works_with_and_without_a_trailing_slash(key, enroll):
    assert enroll(key, "HW-S1", path="/api/v1/enroll/").status_code == 201
    assert enroll(key, "HW-S2", path="/api/v1/enroll").status_code == 201


def test_errors_are_json_whatever_the_accept_header(enroll):
    response = enroll("nope", headers={"HTTP_ACCEPT": "text/html"})
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": response.json()["detail"], "code": "key_invalid"}


def _with(token: str) -> dict:
    """The headers of an agent re-keying itself: its current device token (PROTOCOL.md v1.1 rule 1)."""
    return {"HTTP_AUTHORIZATION": f"Device {token}"}


def test_a_known_hardware_id_reenrolls_with_200_the_same_device_id_and_a_new_token(key, enroll, heartbeat):
    first = enroll(key, "HW-R").json()
    heartbeat(first["device_token"], battery_pct=40)  # the token authenticated: no retry any more
    second = enroll(key, "HW-R", headers=_with(first["device_token"]), agent_version="2.0")
    assert second.status_code == 200
    body = second.json()
    assert body["device_id"] == first["device_id"]
    assert body["device_token"] != first["device_token"]
    device = Device.objects.get(pk=first["device_id"])
    assert device.enrollment_count == 2 and device.agent_version == "2.0"


def test_reenrollment_revokes_the_old_token_on_its_very_next_request(key, enroll, heartbeat):
    old = enroll(key, "HW-OLD").json()["device_token"]
    assert heartbeat(old).status_code == 200  # now cached as verified
    new = enroll(key, "HW-OLD", headers=_with(old)).json()["device_token"]
    refused = heartbeat(old)
    assert refused.status_code == 401 and refused.json()["code"] == "token_invalid"
    assert heartbeat(new).status_code == 200


def test_reenrollment_keeps_the_history(key, enroll, heartbeat):
    token = enroll(key, "HW-HIST").json()["device_token"]
    heartbeat(token, battery_pct=77)
    assert enroll(key, "HW-HIST", headers=_with(token)).status_code == 200
    assert HeartbeatSample.objects.filter(device__hardware_id="HW-HIST").count() == 1


def test_reenrollment_asks_commands_for_new_keys(key, enroll, heartbeat, monkeypatch):
    calls = []
    real = device_hooks.keys_on_enroll
    monkeypatch.setattr(device_hooks, "keys_on_enroll", lambda **kw: calls.append(kw["reenrolled"]) or real(**kw))
    token = enroll(key, "HW-K").json()["device_token"]
    heartbeat(token)
    enroll(key, "HW-K", headers=_with(token))
    assert calls == [False, True]


def test_command_keys_in_the_answer_are_the_hooks_own(key, enroll, monkeypatch):
    keys = [{"kid": "k7", "key": "QUJD"}]
    monkeypatch.setattr(device_hooks, "keys_on_enroll", lambda **kw: keys)
    assert enroll(key, "HW-KK").json()["command_keys"] == keys


# --- Retry safety ----------------------------------------------------------------------------


def test_a_repeat_within_ten_minutes_before_the_token_was_used_costs_no_key_use(make_key, enroll, heartbeat):
    key = make_key(max_uses=1)
    first = enroll(key, "HW-RETRY")
    with time_machine.travel(timezone.now() + timedelta(minutes=9), tick=False):
        again = enroll(key, "HW-RETRY")
    assert first.status_code == again.status_code == 201
    a, b = first.json(), again.json()
    assert b["device_id"] == a["device_id"]
    assert b["command_keys"] == a["command_keys"]
    assert b["device_token"] != a["device_token"]
    assert EnrollmentKey.objects.get().uses == 1
    assert heartbeat(a["device_token"]).status_code == 401  # the unused earlier token is revoked
    assert heartbeat(b["device_token"]).status_code == 200


def test_a_repeat_of_a_reenrollment_answers_200_again(key, enroll, heartbeat):
    token = enroll(key, "HW-RR").json()["device_token"]
    heartbeat(token)
    assert enroll(key, "HW-RR", headers=_with(token)).status_code == 200
    assert enroll(key, "HW-RR", headers=_with(token)).status_code == 200  # the answer was lost: same token again
    assert EnrollmentKey.objects.get().uses == 2


def test_a_repeat_after_the_token_authenticated_is_a_reenrollment(make_key, enroll, heartbeat):
    key = make_key(max_uses=1)
    heartbeat(enroll(key, "HW-USED").json()["device_token"])
    again = enroll(key, "HW-USED")
    assert again.status_code == 403 and again.json()["code"] == "key_exhausted"


def test_a_repeat_after_ten_minutes_is_a_reenrollment(make_key, enroll):
    key = make_key(max_uses=2)
    token = enroll(key, "HW-LATE").json()["device_token"]
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        without_token = enroll(key, "HW-LATE")
        again = enroll(key, "HW-LATE", headers=_with(token))
    assert again.status_code == 200
    assert without_token.status_code == 409 and without_token.json()["code"] == "reenroll_needs_approval"
    assert EnrollmentKey.objects.get().uses == 2


def test_a_repeat_with_another_key_is_a_reenrollment(make_key, enroll):
    token = enroll(make_key(name="one"), "HW-OTHER").json()["device_token"]
    assert enroll(make_key(name="two"), "HW-OTHER").status_code == 409
    assert enroll(make_key(name="three"), "HW-OTHER", headers=_with(token)).status_code == 200


# --- Key errors ------------------------------------------------------------------------------


def test_a_missing_key_is_401_key_invalid(enroll):
    response = enroll(None)
    assert response.status_code == 401 and response.json()["code"] == "key_invalid"


def test_an_unknown_key_is_401_key_invalid(key, enroll):
    response = enroll(key + "x")
    assert response.status_code == 401 and response.json()["code"] == "key_invalid"


def test_a_revoked_key_is_401_key_invalid(key, enroll):
    EnrollmentKey.objects.update(revoked_at=timezone.now())
    assert enroll(key).json()["code"] == "key_invalid"


def test_an_expired_key_is_403_key_expired(make_key, enroll):
    key = make_key(expires_at=timezone.now() + timedelta(days=1))
    with time_machine.travel(timezone.now() + timedelta(days=2), tick=False):
        response = enroll(key)
    assert response.status_code == 403 and response.json()["code"] == "key_expired"


def test_a_used_up_key_is_403_key_exhausted(make_key, enroll):
    key = make_key(max_uses=1)
    assert enroll(key, "HW-A").status_code == 201
    response = enroll(key, "HW-B")
    assert response.status_code == 403 and response.json()["code"] == "key_exhausted"
    assert not Device.objects.filter(hardware_id="HW-B").exists()


def test_every_key_use_is_audited(key, enroll, heartbeat):
    token = enroll(key, "HW-AUD").json()["device_token"]
    heartbeat(token)
    enroll(key, "HW-AUD", headers=_with(token))
    uses = AuditEvent.objects.filter(action="enrollment_key.use").order_by("at")
    assert [(e.data["reenrolled"], e.data["allowed_by"]) for e in uses] == [(False, "created"), (True, "token")]
    assert all(e.actor_label == "key:bench" for e in uses)


def test_a_key_pins_its_group_and_tags(make_key, enroll):
    from devices.models import Tag

    group = DeviceGroupFactory(name="lobby")
    tag = Tag.objects.create(name="kiosk")
    key = make_key(group=group, tags=[tag])
    enroll(key, "HW-PIN")
    device = Device.objects.get(hardware_id="HW-PIN")
    assert device.group == group and list(device.tags.values_list("name", flat=True)) == ["kiosk"]
    assert device.enrolled_with == "bench"


# --- Retired hardware ids --------------------------------------------------------------------


def test_a_deleted_devices_hardware_id_is_retired_until_an_admin_restores_it(key, enroll, admin_user):
    from devices import services as device_services
    from enrollment.services.reenroll import approve_reenroll_request

    device_id = enroll(key, "HW-GONE").json()["device_id"]
    device_services.delete_devices(actor=admin_user, device_ids=[device_id])
    refused = enroll(key, "HW-GONE")
    assert refused.status_code == 403 and refused.json()["code"] == "device_retired"
    device_services.restore_device(actor=admin_user, device=Device.objects.get(pk=device_id))
    # Restored, its old token is dead: like any re-enrollment without one, it needs an approval.
    asked = enroll(key, "HW-GONE")
    assert asked.status_code == 409
    approve_reenroll_request(actor=admin_user, request_id=asked.json()["reenroll_request"])
    again = enroll(key, "HW-GONE", reenroll_request=asked.json()["reenroll_request"])
    assert again.status_code == 200 and again.json()["device_id"] == device_id
