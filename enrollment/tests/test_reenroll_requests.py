"""Re-enrollment of a known device, PROTOCOL.md v1.1 (issue 14, finding 3): the device's current
token, an admin's approval of this very request, or the opt-in `allowed` policy; nothing else.
Knowing a serial and an enrollment key is not enough to take a device over."""

import threading
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from commands.models import Delivery
from devices.models import Device
from enrollment.models import EnrollmentKey, ReenrollRequest
from enrollment.services import enroll as enroll_services
from enrollment.services.reenroll import ReenrollDecisionRefused, approve_reenroll_request, deny_reenroll_request
from mdm.models import AuditEvent, FleetSettings

# Transactional: token revocation happens on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def _with(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Device {token}"}


@pytest.fixture
def known(key, enroll, heartbeat):
    """A device enrolled with `key` whose token has authenticated (so a repeat is no retry)."""
    body = enroll(key, "HW-KNOWN", model="Pixel 8").json()
    assert heartbeat(body["device_token"]).status_code == 200
    return body


def _ask(response) -> str:
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "reenroll_needs_approval" and body["detail"]
    assert set(body) == {"detail", "code", "reenroll_request"}  # no device id, no token, no keys
    return body["reenroll_request"]


@pytest.fixture
def allowed_policy(db):
    FleetSettings.objects.update_or_create(pk=1, defaults={"reenroll_policy": "allowed"})
    FleetSettings.forget_cached()


# --- The default and rule 1 (the device's current token) --------------------------------------


def test_a_fresh_installation_needs_the_token_or_an_approval():
    assert FleetSettings.current().reenroll_policy == "approval"


def test_a_serial_and_a_key_alone_get_a_409_and_change_nothing(key, enroll, heartbeat, known, admin_user):
    from commands.services import issue_command

    command = issue_command(actor=admin_user, type="ping", params={}, target={"device_ids": [known["device_id"]]}).command
    request_id = _ask(enroll(key, "HW-KNOWN", model="Evil phone"))
    uuid.UUID(request_id)
    device = Device.objects.get(pk=known["device_id"])
    assert device.enrollment_count == 1 and device.model == "Pixel 8"
    assert heartbeat(known["device_token"]).status_code == 200  # the real device keeps its token
    assert Delivery.objects.get(command=command).state != "cancelled"
    assert EnrollmentKey.objects.get().uses == 1  # a refused re-enrollment uses no key use


def test_the_409_opens_a_request_with_what_an_admin_decides_on(key, enroll, known):
    request_id = _ask(enroll(key, "HW-KNOWN", model="Evil phone"))
    request = ReenrollRequest.objects.get(pk=request_id)
    assert str(request.device_id) == known["device_id"]
    assert (request.state, request.source_ip, request.key_name, request.model) == ("pending", "127.0.0.1", "bench", "Evil phone")
    assert abs((timezone.now() - request.created_at).total_seconds()) < 30
    opened = AuditEvent.objects.get(action="reenroll_request.open")
    assert opened.actor_label == "key:bench" and opened.data["request"] == request_id and opened.ip == "127.0.0.1"


def test_the_devices_current_token_re_keys_it(key, enroll, heartbeat, known):
    again = enroll(key, "HW-KNOWN", headers=_with(known["device_token"]))
    assert again.status_code == 200 and again.json()["device_id"] == known["device_id"]
    assert heartbeat(known["device_token"]).status_code == 401
    assert not ReenrollRequest.objects.exists()


@pytest.mark.parametrize("which", ["another device's", "a revoked one", "a malformed one", "the wrong scheme"])
def test_a_token_that_is_not_the_devices_current_one_counts_as_no_token(key, enroll, heartbeat, known, which):
    if which == "another device's":
        other = enroll(key, "HW-OTHER").json()["device_token"]
        heartbeat(other)
        headers = _with(other)
    elif which == "a revoked one":
        new = enroll(key, "HW-KNOWN", headers=_with(known["device_token"])).json()["device_token"]
        heartbeat(new)
        headers = _with(known["device_token"])
    elif which == "a malformed one":
        headers = _with("not-a-token\x00")
    else:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {known['device_token']}"}
    _ask(enroll(key, "HW-KNOWN", headers=headers))


# --- Rule 2: an admin approves this very request ------------------------------------------------


def test_an_approved_request_re_enrolls_once(key, enroll, heartbeat, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    _ask(enroll(key, "HW-KNOWN", reenroll_request=request_id))  # still pending
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    again = enroll(key, "HW-KNOWN", reenroll_request=request_id)
    assert again.status_code == 200 and again.json()["device_id"] == known["device_id"]
    assert heartbeat(known["device_token"]).status_code == 401  # the old token is revoked
    heartbeat(again.json()["device_token"])
    request = ReenrollRequest.objects.get(pk=request_id)
    assert request.state == "used" and request.used_at is not None
    fresh = _ask(enroll(key, "HW-KNOWN", reenroll_request=request_id))  # used: spent
    assert fresh != request_id
    assert AuditEvent.objects.filter(action="enrollment_key.use", data__allowed_by="request").count() == 1


def test_a_pending_id_is_answered_with_the_same_id_and_opens_nothing(key, enroll, known):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        assert _ask(enroll(key, "HW-KNOWN", reenroll_request=request_id)) == request_id
    request = ReenrollRequest.objects.get()
    assert request.last_attempt_at > request.created_at


@pytest.mark.parametrize("spent", ["denied", "used", "expired", "unknown", "not a uuid", "another device's", "another key's"])
def test_a_spent_or_unknown_id_gets_a_new_id(key, make_key, enroll, heartbeat, known, admin_user, spent):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    shown, enroll_key, moment = request_id, key, timezone.now()
    if spent == "denied":
        deny_reenroll_request(actor=admin_user, request_id=request_id)
    elif spent == "used":
        approve_reenroll_request(actor=admin_user, request_id=request_id)
        heartbeat(enroll(key, "HW-KNOWN", reenroll_request=request_id).json()["device_token"])
    elif spent == "expired":
        approve_reenroll_request(actor=admin_user, request_id=request_id)
        moment = timezone.now() + timedelta(hours=24, seconds=1)
    elif spent == "unknown":
        shown = str(uuid.uuid4())
    elif spent == "not a uuid":
        shown = "my-request"
    elif spent == "another device's":
        heartbeat(enroll(key, "HW-OTHER").json()["device_token"])
        shown = _ask(enroll(key, "HW-OTHER"))
        approve_reenroll_request(actor=admin_user, request_id=shown)
    else:
        approve_reenroll_request(actor=admin_user, request_id=request_id)
        enroll_key = make_key(name="another")
    with time_machine.travel(moment, tick=False):
        fresh = _ask(enroll(enroll_key, "HW-KNOWN", reenroll_request=shown))
    assert fresh not in (request_id, shown)
    assert ReenrollRequest.objects.get(pk=fresh).state == "pending"
    assert Device.objects.get(hardware_id="HW-KNOWN").token_used_at is not None  # not taken over


def test_an_approval_is_good_for_24_hours_from_the_approval(key, enroll, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    with time_machine.travel(timezone.now() + timedelta(hours=20), tick=False):
        approve_reenroll_request(actor=admin_user, request_id=request_id)
    with time_machine.travel(timezone.now() + timedelta(hours=43), tick=False):
        assert enroll(key, "HW-KNOWN", reenroll_request=request_id).status_code == 200


def test_every_enroll_without_token_or_id_opens_its_own_request_and_20_are_kept(key, enroll, known):
    start = timezone.now()
    ids = []
    for minute in range(22):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            ids.append(_ask(enroll(key, "HW-KNOWN")))
    assert len(set(ids)) == 22
    kept = set(ReenrollRequest.objects.values_list("pk", flat=True))
    assert {str(k) for k in kept} == set(ids[2:])


def test_a_withdrawn_approval_no_longer_lets_it_in(key, enroll, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    deny_reenroll_request(actor=admin_user, request_id=request_id)
    assert _ask(enroll(key, "HW-KNOWN", reenroll_request=request_id)) != request_id


def test_a_used_up_key_is_refused_before_any_request_is_opened(make_key, enroll, heartbeat):
    key = make_key(max_uses=1)
    heartbeat(enroll(key, "HW-CAP").json()["device_token"])
    refused = enroll(key, "HW-CAP")
    assert refused.status_code == 403 and refused.json()["code"] == "key_exhausted"
    assert not ReenrollRequest.objects.exists()


def test_decisions_are_audited_and_only_open_requests_can_be_decided(key, enroll, heartbeat, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    approve_reenroll_request(actor=admin_user, request_id=request_id)  # again: nothing changes
    approved = AuditEvent.objects.filter(action="reenroll_request.approve")
    assert approved.count() == 1 and approved.get().actor_label == "user:alice-admin"
    assert approved.get().data["hardware_id"] == "HW-KNOWN"
    heartbeat(enroll(key, "HW-KNOWN", reenroll_request=request_id).json()["device_token"])
    with pytest.raises(ReenrollDecisionRefused):
        deny_reenroll_request(actor=admin_user, request_id=request_id)
    denied_id = _ask(enroll(key, "HW-KNOWN"))
    deny_reenroll_request(actor=admin_user, request_id=denied_id)
    with pytest.raises(ReenrollDecisionRefused):
        approve_reenroll_request(actor=admin_user, request_id=denied_id)
    assert AuditEvent.objects.filter(action="reenroll_request.deny").count() == 1


# --- Rule 3: the opt-in policy -----------------------------------------------------------------


def test_the_allowed_policy_lets_any_re_enrollment_in(key, enroll, known, allowed_policy):
    again = enroll(key, "HW-KNOWN")
    assert again.status_code == 200 and again.json()["device_id"] == known["device_id"]
    assert not ReenrollRequest.objects.exists()


# --- Retry safety under these rules ------------------------------------------------------------


def test_a_lost_answer_to_an_approved_re_enrollment_is_repeated_with_the_same_id(key, enroll, heartbeat, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    lost = enroll(key, "HW-KNOWN", reenroll_request=request_id).json()
    with time_machine.travel(timezone.now() + timedelta(minutes=9), tick=False):
        again = enroll(key, "HW-KNOWN", reenroll_request=request_id)
    assert again.status_code == 200
    assert again.json()["device_id"] == lost["device_id"] and again.json()["command_keys"] == lost["command_keys"]
    assert heartbeat(lost["device_token"]).status_code == 401
    assert heartbeat(again.json()["device_token"]).status_code == 200
    assert EnrollmentKey.objects.get().uses == 2  # the first enrollment and this re-enrollment
    assert Device.objects.get(pk=known["device_id"]).enrollment_count == 2


def test_a_lost_answer_to_a_re_key_is_repeated_with_the_same_token(key, enroll, heartbeat, known):
    lost = enroll(key, "HW-KNOWN", headers=_with(known["device_token"])).json()
    again = enroll(key, "HW-KNOWN", headers=_with(known["device_token"]))
    assert again.status_code == 200 and again.json()["command_keys"] == lost["command_keys"]
    assert heartbeat(again.json()["device_token"]).status_code == 200


def test_retry_safety_is_no_way_around_the_approval(key, enroll, heartbeat, known, admin_user):
    """Within the 10 minutes after an approved re-enrollment, before the new token is used, a
    caller with only the serial and the key is not a retry: it gets a 409, not the device."""
    request_id = _ask(enroll(key, "HW-KNOWN"))
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    real = enroll(key, "HW-KNOWN", reenroll_request=request_id).json()
    _ask(enroll(key, "HW-KNOWN"))
    _ask(enroll(key, "HW-KNOWN", headers=_with(known["device_token"])))  # the revoked token either
    assert heartbeat(real["device_token"]).status_code == 200


def test_a_retry_under_the_allowed_policy_ends_with_the_policy(key, enroll, heartbeat, known, allowed_policy, admin_user):
    from mdm.services import update_fleet_settings

    assert enroll(key, "HW-KNOWN").status_code == 200
    update_fleet_settings(actor=admin_user, reenroll_policy="approval")
    FleetSettings.forget_cached()
    _ask(enroll(key, "HW-KNOWN"))


def test_a_first_enrollment_is_still_retried_without_anything(key, enroll):
    first = enroll(key, "HW-NEW").json()
    again = enroll(key, "HW-NEW")
    assert again.status_code == 201 and again.json()["device_id"] == first["device_id"]


def test_two_repeats_racing_with_one_approved_id_re_enroll_the_device_once(key, enroll, heartbeat, known, admin_user):
    request_id = _ask(enroll(key, "HW-KNOWN"))
    approve_reenroll_request(actor=admin_user, request_id=request_id)
    barrier, outcomes = threading.Barrier(2), []

    def repeat():
        barrier.wait()
        try:
            outcomes.append(enroll_services.enroll_device(
                raw_key=key, hardware_id="HW-KNOWN", info={}, reenroll_request=request_id).answer["device_token"])
        except enroll_services.EnrollRefused as refused:
            outcomes.append(refused.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=repeat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The loser waited for the winner's lock and is answered as its retry: one re-enrollment,
    # one key use, and exactly one of the two tokens works.
    assert Device.objects.get(pk=known["device_id"]).enrollment_count == 2
    assert EnrollmentKey.objects.get().uses == 2
    working = [t for t in outcomes if t != "reenroll_needs_approval" and heartbeat(t).status_code == 200]
    assert len(working) == 1, outcomes
