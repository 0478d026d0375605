"""GET /api/v1/reenroll-requests and POST .../<id>/approve | deny (PROTOCOL.md v1.1, admin API):
admins only, audited, in the OpenAPI schema."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from devices.models import Device
from devices.tests.factories import DeviceFactory, enroll_for_test
from enrollment.models import ReenrollRequest
from enrollment.services import enroll as enroll_services
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/reenroll-requests"
FIELDS = {"id", "device_id", "hardware_id", "source_ip", "key_name", "model", "created_at"}


@pytest.fixture
def ask(key):
    """ask(hardware_id) -> the id of a re-enrollment request opened by enrolling a known device
    again without its token, from 203.0.113.7."""

    def open_request(hardware_id: str = "HW-ASK", model: str = "Pixel 8") -> str:
        if not Device.objects.filter(hardware_id=hardware_id).exists():
            DeviceFactory(hardware_id=hardware_id)
        with pytest.raises(enroll_services.EnrollRefused) as refused:
            enroll_services.enroll_device(raw_key=key, hardware_id=hardware_id, info={"model": model}, ip="203.0.113.7")
        assert refused.value.code == "reenroll_needs_approval"
        return refused.value.extra["reenroll_request"]

    return open_request


def test_admins_list_pending_requests_with_what_they_decide_on(admin_api, ask):
    request_id = ask("HW-ASK", "Galaxy Tab")
    response = admin_api.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and "next" in body
    (row,) = body["results"]
    assert FIELDS <= set(row)
    assert row["id"] == request_id and row["hardware_id"] == "HW-ASK" and row["model"] == "Galaxy Tab"
    assert (row["source_ip"], row["key_name"], row["state"]) == ("203.0.113.7", "bench", "pending")
    assert isinstance(row["created_at"], int)
    assert row["device_id"] == str(ReenrollRequest.objects.get(pk=request_id).device_id)


def test_the_list_is_paginated_and_holds_its_query_count(admin_api, ask, django_assert_max_num_queries):
    for i in range(55):
        ask(f"HW-{i:03d}")
    with django_assert_max_num_queries(8):
        first = admin_api.get(URL).json()
    assert first["count"] == 55 and len(first["results"]) == 50 and first["next"]
    assert len(admin_api.get(URL, {"page": 2}).json()["results"]) == 5


def test_the_state_filter(admin_api, admin_user, api_client_for, ask):
    from enrollment.services.reenroll import approve_reenroll_request, deny_reenroll_request

    pending, approved, denied = ask("HW-1"), ask("HW-2"), ask("HW-3")
    approve_reenroll_request(actor=admin_user, request_id=approved)
    deny_reenroll_request(actor=admin_user, request_id=denied)

    def ids(state=None):
        params = {"state": state} if state else {}
        return {r["id"] for r in api_client_for(admin_user).get(URL, params).json()["results"]}

    assert ids() == ids("pending") == {pending}
    assert ids("approved") == {approved} and ids("denied") == {denied}
    assert ids("all") == {pending, approved, denied}
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        assert ids("expired") == {approved} and ids("approved") == set()
    bad = admin_api.get(URL, {"state": "maybe"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid" and "state" in bad.json()["fields"]


def test_an_admin_approves_and_the_approval_is_audited(admin_api, ask):
    request_id = ask()
    response = admin_api.post(f"{URL}/{request_id}/approve")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "approved" and body["decided_by"] == "alice-admin"
    assert body["approved_until"] - body["decided_at"] == 24 * 3600
    event = AuditEvent.objects.get(action="reenroll_request.approve")
    assert event.actor_label == "user:alice-admin" and event.data["request"] == request_id
    assert admin_api.get(URL).json()["count"] == 0  # no longer pending


def test_an_admin_denies_and_a_denied_request_cannot_be_approved(admin_api, ask):
    request_id = ask()
    denied = admin_api.post(f"{URL}/{request_id}/deny")
    assert denied.status_code == 200 and denied.json()["state"] == "denied"
    assert admin_api.post(f"{URL}/{request_id}/deny").status_code == 200  # idempotent
    refused = admin_api.post(f"{URL}/{request_id}/approve")
    assert refused.status_code == 409 and refused.json()["code"] == "not_pending" and refused.json()["detail"]
    assert ReenrollRequest.objects.get(pk=request_id).state == "denied"
    assert AuditEvent.objects.filter(action="reenroll_request.deny").count() == 1


def test_an_unknown_id_is_404(admin_api):
    response = admin_api.post(f"{URL}/{uuid.uuid4()}/approve")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_requests_of_a_deleted_device_are_not_listed(admin_api, admin_user, ask):
    from devices.services import delete_devices

    request_id = ask("HW-GONE")
    delete_devices(actor=admin_user, device_ids=[str(ReenrollRequest.objects.get(pk=request_id).device_id)])
    assert admin_api.get(URL, {"state": "all"}).json()["count"] == 0


@pytest.mark.parametrize("who", ["operator", "viewer", "anonymous", "device"])
def test_outsiders_neither_list_nor_decide(who, operator_api, viewer_api, anon_api, api_client_for, ask):
    request_id = ask()
    if who == "device":
        client = anon_api
        client.credentials(HTTP_AUTHORIZATION=f"Device {enroll_for_test().token}")
    else:
        client = {"operator": operator_api, "viewer": viewer_api, "anonymous": anon_api}[who]
    expected = 403 if who in ("operator", "viewer") else 401
    for response in (
        client.get(URL),
        client.get(f"{URL}/{request_id}"),
        client.post(f"{URL}/{request_id}/approve"),
        client.post(f"{URL}/{request_id}/deny"),
    ):
        assert response.status_code == expected, (who, response.status_code)
        assert set(response.json()) >= {"detail", "code"}
    assert ReenrollRequest.objects.get(pk=request_id).state == "pending"
    assert not AuditEvent.objects.filter(action__startswith="reenroll_request.").exclude(action="reenroll_request.open").exists()


def test_the_endpoints_are_in_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    listed = next(p for p in paths if p.rstrip("/").endswith("/reenroll-requests"))
    assert any(param["name"] == "state" for param in paths[listed]["get"]["parameters"])
    assert any(p.rstrip("/").endswith("/approve") and "reenroll-requests" in p for p in paths)
    assert any(p.rstrip("/").endswith("/deny") and "reenroll-requests" in p for p in paths)
