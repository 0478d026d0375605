"""Enrollment keys over the admin API (admins only) and `manage.py create_enrollment_key`."""

import pytest
from django.core.management import CommandError, call_command

from devices.models import DeviceGroup
from enrollment.models import EnrollmentKey, hash_key

pytestmark = pytest.mark.django_db


def test_an_admin_creates_a_key_and_sees_it_once(admin_api, group_a):
    response = admin_api.post("/api/v1/enrollment-keys", {"name": "API key", "max_uses": 10, "expires_in_days": 3, "group": "warehouse-a"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith("mdmk_") and body["state"] == "active" and body["group"] == "warehouse-a"
    assert EnrollmentKey.objects.get(pk=body["id"]).key_hash == hash_key(body["key"])
    listed = admin_api.get("/api/v1/enrollment-keys").json()["results"]
    assert "key" not in listed[0] and listed[0]["prefix"] == body["key"][:11]


def test_an_admin_revokes_a_key(admin_api, key):
    key_id = EnrollmentKey.objects.get().pk
    response = admin_api.post(f"/api/v1/enrollment-keys/{key_id}/revoke")
    assert response.status_code == 200 and response.json()["state"] == "revoked"


@pytest.mark.parametrize("persona", ["operator_api", "viewer_api", "anon_api"])
def test_nobody_else_touches_keys(request, persona, key):
    api = request.getfixturevalue(persona)
    expected = 401 if persona == "anon_api" else 403
    assert api.get("/api/v1/enrollment-keys").status_code == expected
    assert api.post("/api/v1/enrollment-keys", {"name": "x"}, format="json").status_code == expected


def test_bad_input_is_a_400(admin_api):
    response = admin_api.post("/api/v1/enrollment-keys", {"name": "", "max_uses": 0}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_the_command_prints_the_key_alone_on_its_last_line(capsys, key):
    call_command("create_enrollment_key", "--name", "Line 3", "--expires-in-days", "30", "--max-uses", "200", "--group", "line-3")
    out = capsys.readouterr().out.strip().splitlines()
    raw = out[-1]
    assert raw.startswith("mdmk_") and " " not in raw
    created = EnrollmentKey.objects.get(key_hash=hash_key(raw))
    assert created.name == "Line 3" and created.max_uses == 200 and created.expires_at is not None
    assert created.group == DeviceGroup.objects.get(name="line-3")


def test_the_commands_key_enrolls_a_device(capsys, enroll):
    call_command("create_enrollment_key", "--name", "cli")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    assert enroll(raw, "HW-CLI").status_code == 201


def test_the_command_refuses_nonsense(db):
    with pytest.raises(CommandError):
        call_command("create_enrollment_key", "--name", "x", "--max-uses", "0")
