"""Scoped API keys: made by admins (console and API), shown once, stored as SHA-256, revocable,
last use recorded, audited; a key acts only within its scopes, never with a role."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


def key_client(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def test_an_admin_creates_a_key_through_the_api_and_sees_it_once(admin_api):
    response = admin_api.post("/api/v1/api-keys", {"name": "ci", "scopes": ["apk:upload"]}, format="json")
    assert response.status_code == 201, response.json()
    raw = response.json()["key"]
    assert raw.startswith("mdmk_") and response.json()["scopes"] == ["apk:upload"]
    key = ApiKey.objects.get()
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest() and raw not in key.key_hash
    listed = admin_api.get("/api/v1/api-keys").json()["results"]
    assert listed[0]["prefix"] == key.prefix and "key" not in listed[0]
    assert AuditEvent.objects.get(action="api_key.create").data["scopes"] == ["apk:upload"]


@pytest.mark.parametrize("body", [{"name": "x", "scopes": []}, {"name": "x", "scopes": ["devices:wipe"]}, {"scopes": ["apk:read"]},
                                  {"name": "x", "scopes": ["apk:read"], "expires_in_days": 0}])
def test_a_bad_key_request_is_a_400(admin_api, body):
    response = admin_api.post("/api/v1/api-keys", body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


@pytest.mark.parametrize("persona", ["viewer_api", "operator_api", "anon_api"])
def test_only_admins_manage_keys(request, persona):
    api = request.getfixturevalue(persona)
    expected = 401 if persona == "anon_api" else 403
    assert api.get("/api/v1/api-keys").status_code == expected
    assert api.post("/api/v1/api-keys", {"name": "x", "scopes": ["apk:read"]}, format="json").status_code == expected


def test_a_key_has_no_role_anywhere(admin_user):
    made = services.create_api_key(actor=admin_user, name="ci", scopes=["apk:upload", "apk:read"])
    client = key_client(made.raw)
    assert client.get("/api/v1/devices").status_code == 403
    assert client.get("/api/v1/users/me").status_code == 403
    assert client.get("/api/v1/api-keys").status_code == 403
    assert client.post("/api/v1/commands", {"type": "ping", "target": {"all": True}}, format="json").status_code == 403


def test_a_wrong_revoked_or_expired_key_is_a_401(admin_user, admin_api):
    made = services.create_api_key(actor=admin_user, name="ci", scopes=["apk:read"])
    for raw in (made.raw[:-1] + ("A" if made.raw[-1] != "A" else "B"), "mdmk_nothing", "", made.raw + " extra"):
        response = key_client(raw).get("/api/v1/apks")
        assert response.status_code == 401, raw
        assert response.json()["code"] == "api_key_invalid"
    assert key_client(made.raw).get("/api/v1/apks").status_code == 200
    response = admin_api.post(f"/api/v1/api-keys/{made.key.id}/revoke")
    assert response.status_code == 200 and response.json()["revoked_at"]
    assert key_client(made.raw).get("/api/v1/apks").status_code == 401
    assert AuditEvent.objects.filter(action="api_key.revoke").count() == 1
    expired = services.create_api_key(actor=admin_user, name="old", scopes=["apk:read"], expires_at=timezone.now() - timedelta(seconds=1))
    assert key_client(expired.raw).get("/api/v1/apks").status_code == 401


def test_last_use_is_recorded_at_most_once_a_minute(admin_user):
    made = services.create_api_key(actor=admin_user, name="ci", scopes=["apk:read"])
    key_client(made.raw).get("/api/v1/apks")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    key_client(made.raw).get("/api/v1/apks")
    assert ApiKey.objects.get().last_used_at == first


def test_the_console_page_creates_shows_once_and_revokes(console_for, admin_user):
    client = console_for(admin_user)
    page = client.post("/accounts/api-keys/", {"name": "pipeline", "scopes": ["apk:upload"]})
    assert page.status_code == 200
    key = ApiKey.objects.get()
    assert b"mdmk_" + key.prefix.encode() in page.content and b"shown once" in page.content
    assert b"mdmk_" + key.prefix.encode() + b"_" not in client.get("/accounts/api-keys/").content.replace(b"_\xe2\x80\xa6", b"")
    response = client.post(f"/accounts/api-keys/{key.id}/revoke/")
    assert response.status_code == 200 and b"revoked" in response.content
    assert ApiKey.objects.get().revoked_at is not None


@pytest.mark.parametrize("persona", ["viewer_user", "operator_user"])
def test_the_console_page_is_for_admins(request, console_for, persona):
    client = console_for(request.getfixturevalue(persona))
    assert client.get("/accounts/api-keys/").status_code == 403
    assert client.post("/accounts/api-keys/", {"name": "x", "scopes": ["apk:read"]}).status_code == 403
