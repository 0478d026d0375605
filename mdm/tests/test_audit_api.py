"""GET /api/v1/audit: the console's filters (one FilterSet), newest first by cursor, for admins
and operators; viewers and outsiders are refused; bad filters are a 400 naming the filter."""

import base64
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from mdm.tests.audit_helpers import days_ago, event

URL = "/api/v1/audit"


def test_an_outsider_with_no_credentials_gets_a_401(anon_api, db):
    response = anon_api.get(URL)
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_a_device_token_is_no_credential_here(anon_api, enrolled_device):
    response = anon_api.get(URL, **enrolled_device.auth)
    assert response.status_code == 401


def test_an_api_key_has_no_role_so_it_reads_no_audit(admin_user):
    from rest_framework.test import APIClient

    from accounts import services as account_services

    made = account_services.create_api_key(actor=admin_user, name="ci", scopes=["apk:upload", "apk:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {made.raw}")
    assert client.get(URL).status_code == 403


def test_a_viewer_gets_a_403(viewer_api):
    event(action="policy.create")
    response = viewer_api.get(URL)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("who", ["admin_api", "operator_api"])
def test_admins_and_operators_read_events_newest_first(request, who, admin_user):
    event(actor=admin_user, action="old.thing", at=days_ago(2))
    event(actor=admin_user, action="policy.update", target=("policy", "p-9"), data={"password": "hunter2", "name": "Kiosk"}, ip="10.1.2.3")
    body = request.getfixturevalue(who).get(URL).json()
    assert [e["action"] for e in body["results"]] == ["policy.update", "old.thing"]
    newest = body["results"][0]
    assert newest["actor"] == "user:alice-admin" and (newest["target_type"], newest["target_id"]) == ("policy", "p-9")
    assert newest["data"] == {"password": "***", "name": "Kiosk"} and newest["ip"] == "10.1.2.3"
    assert set(newest) == {"id", "at", "actor", "action", "target_type", "target_id", "data", "ip"}


def test_writes_are_not_offered(admin_api):
    assert admin_api.post(URL, {}, format="json").status_code == 405
    assert admin_api.delete(URL).status_code == 405


def test_the_filters_are_the_consoles(operator_api, admin_user):
    event(actor=admin_user, action="policy.create", target=("policy", "p-1"), data={"ssid": "Lobby"}, at=days_ago(3))
    event(actor="device:abc", action="device.enroll", target=("device", "abc"), at=days_ago(1))
    event(actor=None, action="policy.update", target=("policy", "p-1"))

    def actions(**params):
        response = operator_api.get(URL, params)
        assert response.status_code == 200, response.json()
        return [e["action"] for e in response.json()["results"]]

    assert actions(actor="alice") == ["policy.create"]
    assert actions(action="policy.") == ["policy.update", "policy.create"]
    assert actions(action="device.enroll") == ["device.enroll"]
    assert actions(target_type="policy", target_id="p-1") == ["policy.update", "policy.create"]
    assert actions(since=days_ago(2).isoformat(), until=days_ago(0.5).isoformat()) == ["device.enroll"]
    assert actions(q="lobby") == ["policy.create"]
    assert actions(q="lobby", since=(timezone.now() - timedelta(hours=1)).isoformat()) == []


def test_pages_follow_next_until_every_event_was_seen_once(admin_api):
    same = timezone.now() - timedelta(hours=1)
    made = {str(event(action=f"e.{i}", at=same + timedelta(seconds=i // 3)).pk) for i in range(12)}
    seen, url = [], f"{URL}?page_size=5"
    while url:
        body = admin_api.get(url).json()
        assert "count" not in body  # no COUNT over the table
        seen += [e["id"] for e in body["results"]]
        url = body["next"]
    assert len(seen) == 12 and set(seen) == made


@pytest.mark.parametrize(
    "params,field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "9999-12-31T23:59:59-23:59"}, "until"),
        ({"q": "x" * 201}, "q"),
        ({"actor": "a\x00b"}, "actor"),
        ({"action": "p\x00"}, "action"),
    ],
)

def test_a_bad_filter_is_a_400_naming_it(admin_api, params, field):
    response = admin_api.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"] and body["detail"].startswith(f"{field}:")


@pytest.mark.parametrize("until", ["0001-01-02T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_a_search_bounded_by_an_extreme_until_is_answered(admin_api, until):
    event(action="policy.create", data={"name": "Lobby"})
    response = admin_api.get(URL, {"q": "lobby", "until": until})
    assert response.status_code == 200
    assert response.json()["results"] == []  # the 30 days before `until` hold nothing


@pytest.mark.parametrize("position", [None, "garbage", "9999-12-31T23:59:59-23:59", "2026-01-01 00:00:00", "0001-01-01T00:00:00+01:00"])
def test_a_cursor_it_did_not_make_is_a_404_not_a_500(admin_api, position):
    cursor = "bm9uc2Vuc2U" if position is None else base64.b64encode(urlencode({"o": 0, "r": 0, "p": position}).encode()).decode()
    response = admin_api.get(URL, {"cursor": cursor})
    assert response.status_code == 404 and response.json()["detail"] == "Invalid cursor"


def test_a_cursor_with_another_offset_reads_the_same_instant(admin_api):
    event(action="older", at=timezone.now() - timedelta(hours=3))
    position = (timezone.now() - timedelta(hours=2)).astimezone(timezone.get_fixed_timezone(-15 * 60 - 59)).isoformat()
    cursor = base64.b64encode(urlencode({"o": 0, "r": 0, "p": position}).encode()).decode()
    response = admin_api.get(URL, {"cursor": cursor})
    assert response.status_code == 200 and [e["action"] for e in response.json()["results"]] == ["older"]


def test_a_page_costs_the_same_queries_with_many_events(admin_api, admin_user, django_assert_max_num_queries):
    for i in range(60):
        event(actor=admin_user, action="thing.do", data={"n": i})
    with django_assert_max_num_queries(3):  # the user (JWT), the credential check, one page of events
        body = admin_api.get(URL, {"action": "thing.", "q": "thing"}).json()
    assert len(body["results"]) == 50 and body["next"]


def test_the_endpoint_and_its_filters_are_in_the_openapi_schema(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/audit/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"actor", "action", "target_type", "target_id", "since", "until", "q", "cursor", "page_size"} <= names
    assert "Admins and operators" in operation["description"]
