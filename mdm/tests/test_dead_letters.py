"""The write-behind's dead letters for operators (mdm.deadletters): the console's Operations
page, `GET /api/v1/dead-letters` and `.../purge`, and `manage.py dead_letters`; admins only."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from mdm import deadletters
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def letters():
    made = [
        deadletters.letter("heartbeat_state", b'{"wifi_ssid": "a\x00b"}', ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
                           device_id="3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c"),
        deadletters.letter("result", 'dev|{"output": "<script>alert(1)</script>"}', "DataError: bad"),
    ]
    deadletters.record(made)
    return made


def test_an_admin_sees_the_dead_letters_with_reason_device_time_and_size(console_for, admin_user, letters):
    page = console_for(admin_user).get("/ops/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Dead letters" in html and "(2)" in html
    assert "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c" in html and "cannot contain NUL" in html
    assert "\\u0000" in html and "\x00" not in html  # escaped, never raw
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert 'href="/ops/"' in html  # linked from the navigation


@pytest.mark.parametrize("who", ["operator_user", "viewer_user"])
def test_lower_roles_cannot_see_or_purge_them(console_for, request, who, letters):
    client = console_for(request.getfixturevalue(who))
    assert client.get("/ops/").status_code == 403
    assert client.post("/ops/dead-letters/purge").status_code == 403
    assert 'href="/ops/"' not in client.get("/").content.decode()
    assert deadletters.count() == 2


def test_without_signing_in_the_page_sends_to_the_login(client, letters):
    response = client.get("/ops/")
    assert response.status_code == 302 and "/login" in response["Location"]
    assert client.post("/ops/dead-letters/purge").status_code in (302, 403)
    assert deadletters.count() == 2


def test_an_admin_purges_them_from_the_console_and_it_is_audited(console_for, admin_user, letters):
    response = console_for(admin_user).post("/ops/dead-letters/purge", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "No dead letters." in response.content.decode()
    assert deadletters.count() == 0
    event = AuditEvent.objects.get(action="dead_letters.purge")
    assert event.data == {"purged": 2} and event.actor == admin_user


def test_the_api_lists_them_newest_first_for_admins(admin_api, letters):
    body = admin_api.get("/api/v1/dead-letters").json()
    assert body["count"] == 2
    first, second = body["results"]
    assert first["kind"] == "result" and second["kind"] == "heartbeat_state"
    assert set(first) == {"kind", "device_id", "reason", "at", "size", "entry"}
    assert second["size"] == len(b'{"wifi_ssid": "a\x00b"}') and "\\u0000" in second["entry"]
    assert admin_api.get("/api/v1/dead-letters/?page=2").status_code == 404  # one page holds them


def test_the_api_pages_like_every_list(admin_api):
    deadletters.record([deadletters.letter("result", f"e{n}".encode(), "r") for n in range(120)])
    page = admin_api.get("/api/v1/dead-letters?page=3").json()
    assert page["count"] == 120 and [x["entry"] for x in page["results"]] == [f"e{n}" for n in range(19, -1, -1)]


def test_the_api_purge_is_for_admins_and_audited(admin_api, operator_api, viewer_api, anon_api, letters):
    assert operator_api.post("/api/v1/dead-letters/purge").status_code == 403
    assert viewer_api.post("/api/v1/dead-letters/purge").status_code == 403
    assert anon_api.post("/api/v1/dead-letters/purge").status_code == 401
    assert deadletters.count() == 2
    assert admin_api.post("/api/v1/dead-letters/purge").json() == {"purged": 2}
    assert deadletters.count() == 0 and AuditEvent.objects.filter(action="dead_letters.purge").count() == 1


@pytest.mark.parametrize("who, status", [("operator_api", 403), ("viewer_api", 403), ("anon_api", 401)])
def test_the_api_list_is_for_admins_only(request, who, status, letters):
    response = request.getfixturevalue(who).get("/api/v1/dead-letters")
    assert response.status_code == status and set(response.json()) == {"detail", "code"}


def test_the_endpoints_are_in_the_openapi_schema(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/dead-letters/" in schema and "/api/v1/dead-letters/purge/" in schema and "DeadLetter" in schema


def test_the_management_command_lists_and_purges(letters):
    out, err = StringIO(), StringIO()
    call_command("dead_letters", "--list", stdout=out, stderr=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["kind"] for x in lines] == ["result", "heartbeat_state"] and "2 dead letters" in err.getvalue()
    out = StringIO()
    call_command("dead_letters", "--purge", stdout=out)
    assert "purged 2" in out.getvalue() and deadletters.count() == 0
    assert AuditEvent.objects.get(action="dead_letters.purge").actor_label == "manage.py dead_letters"
