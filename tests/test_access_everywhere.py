"""Outsiders are refused by every endpoint; viewers never write. These walk every route of the
project, so a new endpoint is covered the day it is added."""

import pytest

from tests.urlwalk import all_routes

# Open on purpose: sign-in, self-service registration, password reset, probes, and the device
# endpoints' own auth (X-Admin-Key / Device). /metrics has its own (token or address; tested in
# mdm/tests/test_metrics.py).
PUBLIC_PREFIXES = (
    "/accounts/login/",
    "/accounts/register/",
    "/accounts/password-reset/",
    "/accounts/reset/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/auth/token",
    "/admin/login/",
    "/admin/logout/",
    "/static/",
    "/media/",
    # The agent APK for provisioning devices (no credentials yet): only the release an admin marked.
    "/apks/agent/",
)
DEVICE_PREFIXES = ("/api/v1/enroll/", "/api/v1/device/")
# Provisioning scripts fetched by adb tooling carry their own enrollment key (X-Admin-Key).
KEYED_PREFIXES = ("/enrollment/provision.",)


def _is_device_path(path: str) -> bool:
    return path == "/api/v1/enroll" or path.startswith(DEVICE_PREFIXES)


def _routes():
    return [(p, n) for p, n in all_routes() if not p.startswith(PUBLIC_PREFIXES)]


def test_the_walk_finds_the_project_routes():
    paths = [p for p, _ in all_routes()]
    assert "/api/v1/users/" in paths and "/settings/" in paths and "/" in paths
    assert len(paths) > 20


@pytest.mark.parametrize("path", [p for p, _ in _routes()])
def test_an_outsider_with_no_credentials_is_refused(client, db, path):
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        if path.startswith(KEYED_PREFIXES):
            assert response.status_code in (401, 405), (method, path, response.status_code)
        elif _is_device_path(path):
            assert response.status_code in (401, 405), (method, path, response.status_code)
            if response.status_code == 401:
                assert response.json()["code"] in ("token_invalid", "key_invalid")
        elif path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
        elif path.startswith("/admin/"):
            assert response.status_code in (302, 404), (method, path, response.status_code)
            if response.status_code == 302:
                assert "/admin/login/" in response["Location"]
        else:
            assert response.status_code in (302, 405), (method, path, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/accounts/login/"), (method, path)


# A user's own session, profile and password are theirs to change, whatever their role.
OWN_ACCOUNT = ("/accounts/logout/", "/accounts/profile/", "/accounts/password/", "/api/v1/users/me/",
               "/alerts/preferences/", "/api/v1/me/alert-preferences/")


@pytest.mark.parametrize(
    "path",
    [p for p, _ in _routes() if not _is_device_path(p) and not p.startswith(KEYED_PREFIXES + ("/admin/",)) and p not in OWN_ACCOUNT],
)
def test_a_viewer_never_writes(client, api_client_for, viewer_user, path):
    """Every write method by a viewer is refused (403) or not offered at all (405)."""
    if path.startswith("/api/"):
        caller = api_client_for(viewer_user)
    else:
        client.force_login(viewer_user)
        caller = client
    for method in ("post", "put", "patch", "delete"):
        response = getattr(caller, method)(path, {}, format="json") if path.startswith("/api/") else getattr(caller, method)(path)
        assert response.status_code in (403, 405), (method, path, response.status_code)
