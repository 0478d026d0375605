"""Every answer under /api/ that is not a 2xx is JSON {"detail", "code"} (PROTOCOL.md), including
the ones no view writes itself: an unknown path, an id that does not match the route, an object
that does not exist, a body over the limit (found by the schemathesis run, issue 14)."""

import uuid

import pytest


def _is_protocol_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize("path", [
    "/api/v1/devices/{uuid}", "/api/v1/groups/{uuid}", "/api/v1/commands/{uuid}", "/api/v1/wifi-configs/{uuid}",
    "/api/v1/enrollment-keys/{uuid}", "/api/v1/reenroll-requests/{uuid}",
])
def test_an_object_that_does_not_exist_is_404_not_found_with_a_code(admin_api, path):
    _is_protocol_error(admin_api.get(path.format(uuid=uuid.uuid4())), 404, "not_found")


@pytest.mark.parametrize("path", ["/api/v1/devices/not-a-uuid/", "/api/v1/commands/%F2%AD%88%BF/", "/api/v1/no-such-thing"])
def test_a_path_no_route_matches_is_json_too(admin_api, path):
    _is_protocol_error(admin_api.get(path), 404, "not_found")


def test_the_console_keeps_its_html_404(admin_user, console_for):
    response = console_for(admin_user).get("/devices/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_body_over_the_limit_is_413_too_large(admin_api):
    response = admin_api.post("/api/v1/groups", {"name": "x", "description": "y" * (1024 * 1024 + 10)}, format="json")
    _is_protocol_error(response, 413, "too_large")


def test_a_duplicate_wifi_name_on_update_is_a_400_naming_the_field(operator_api):
    first = operator_api.post("/api/v1/wifi-configs", {"name": "lobby", "ssid": "Lobby", "security": "open"}, format="json")
    second = operator_api.post("/api/v1/wifi-configs", {"name": "store", "ssid": "Store", "security": "open"}, format="json")
    assert first.status_code == second.status_code == 201
    response = operator_api.patch(f"/api/v1/wifi-configs/{second.json()['id']}", {"name": "lobby"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["fields"]
    assert operator_api.get(f"/api/v1/wifi-configs/{second.json()['id']}").json()["name"] == "store"
