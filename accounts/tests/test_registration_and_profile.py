import pytest
from django.contrib.auth import get_user_model

from accounts.tokens import RefreshToken
from mdm.models import AuditEvent
from tests.urlwalk import all_routes

User = get_user_model()
NEW = {"username": "newbie", "email": "New@Example.test", "password1": "s3cret-Passphrase!", "password2": "s3cret-Passphrase!"}


@pytest.fixture
def open_registration(settings, db):
    settings.REGISTRATION_OPEN = True


@pytest.fixture
def pending_user(open_registration, client):
    client.post("/accounts/register/", NEW)
    client.logout()
    return User.objects.get(username="newbie")


def test_registration_is_closed_by_default(client, db):
    from django.conf import settings

    assert settings.REGISTRATION_OPEN is False
    assert client.get("/accounts/register/").status_code == 404
    assert client.post("/accounts/register/", NEW).status_code == 404
    assert not User.objects.filter(username="newbie").exists()
    assert b"Create an account" not in client.get("/accounts/login/").content


def test_a_new_registration_waits_for_approval_and_is_not_signed_in(client, open_registration):
    response = client.post("/accounts/register/", NEW)
    assert response.status_code == 302 and response["Location"] == "/accounts/register/pending/"
    user = User.objects.get(username="newbie")
    assert user.is_pending and not user.is_active and user.email == "new@example.test"
    assert b"Waiting for approval" in client.get(response["Location"]).content
    assert client.get("/").status_code == 302  # not signed in
    assert AuditEvent.objects.filter(action="user.register", target_id=str(user.pk)).exists()


def test_a_new_registration_cannot_sign_in_and_is_told_why(client, pending_user):
    response = client.post("/accounts/login/", {"username": "newbie", "password": NEW["password1"]})
    assert response.status_code == 200
    assert b"waiting for an admin&#x27;s approval" in response.content
    assert client.get("/").status_code == 302
    # The wrong password learns nothing about the account.
    wrong = client.post("/accounts/login/", {"username": "newbie", "password": "not-it-at-all"})
    assert b"approval" not in wrong.content and b"Please enter a correct username" in wrong.content


def test_a_new_registration_cannot_get_an_api_token(anon_api, pending_user):
    response = anon_api.post("/api/v1/auth/token", {"username": "newbie", "password": NEW["password1"]}, format="json")
    assert response.status_code == 401 and response.json()["code"] == "no_active_account"


def _readable_routes():
    public = ("/accounts/login/", "/accounts/register/", "/accounts/password-reset/", "/accounts/reset/", "/healthz", "/readyz",
              "/metrics", "/api/schema/", "/api/docs/", "/api/v1/auth/token", "/admin/login/", "/admin/logout/", "/static/", "/media/",
              "/api/v1/enroll", "/api/v1/device/", "/enrollment/provision.")
    return [p for p, _ in all_routes() if not p.startswith(public)]


def test_a_new_registration_cannot_read_the_fleet(client, api_client_for, pending_user):
    """Even holding a session and a token made for it (as if it had got them somehow), a
    registered account reads nothing: every page sends it to sign in, every API call is 401."""
    client.force_login(pending_user)
    api = api_client_for(pending_user)
    for path in _readable_routes():
        if path.startswith("/api/"):
            assert api.get(path).status_code == 401, path
        else:
            response = client.get(path)
            assert response.status_code in (302, 404, 405), (path, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith(("/accounts/login/", "/admin/login/")), path


def test_an_admin_approves_a_registration_with_a_role_and_it_is_audited(console_for, admin_user, pending_user, client):
    response = console_for(admin_user).post(f"/accounts/users/{pending_user.pk}/approve/", {"role": "operator"})
    assert response.status_code == 200 and b"Deactivate" in response.content
    pending_user.refresh_from_db()
    assert pending_user.is_active and not pending_user.is_pending and pending_user.role == "operator"
    assert AuditEvent.objects.get(action="user.approve").data == {"role": "operator"}
    client.logout()
    client.post("/accounts/login/", {"username": "newbie", "password": NEW["password1"]})
    assert client.get("/").status_code == 200


def test_the_users_page_lists_registrations_waiting_for_approval(console_for, admin_user, pending_user):
    page = console_for(admin_user).get("/accounts/users/").content.decode()
    assert "Waiting for approval" in page and "newbie" in page and "Approve" in page


def test_approving_an_approved_account_is_a_409(console_for, admin_user, viewer_user):
    response = console_for(admin_user).post(f"/accounts/users/{viewer_user.pk}/approve/", {"role": "admin"})
    assert response.status_code == 409
    viewer_user.refresh_from_db()
    assert viewer_user.role == "viewer"


def test_an_admin_rejects_a_registration(console_for, admin_user, pending_user):
    response = console_for(admin_user).post(f"/accounts/users/{pending_user.pk}/reject/")
    assert response.status_code == 200
    assert not User.objects.filter(pk=pending_user.pk).exists()
    assert AuditEvent.objects.get(action="user.reject").data == {"username": "newbie"}


def test_only_a_registration_can_be_rejected(console_for, admin_user, viewer_user):
    assert console_for(admin_user).post(f"/accounts/users/{viewer_user.pk}/reject/").status_code == 409
    assert User.objects.filter(pk=viewer_user.pk).exists()


def test_approval_through_the_api_defaults_to_the_configured_role(admin_api, pending_user, settings):
    settings.REGISTRATION_DEFAULT_ROLE = "operator"
    response = admin_api.post(f"/api/v1/users/{pending_user.pk}/approve", {}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "operator" and response.json()["pending"] is False
    again = admin_api.post(f"/api/v1/users/{pending_user.pk}/approve", {"role": "admin"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_the_api_rejects_a_registration(admin_api, pending_user):
    assert admin_api.post(f"/api/v1/users/{pending_user.pk}/reject", format="json").status_code == 204
    assert not User.objects.filter(pk=pending_user.pk).exists()


@pytest.mark.parametrize("action", ["approve", "reject", "active"])
def test_outsiders_cannot_approve_reject_or_deactivate_through_the_api(operator_api, viewer_api, anon_api, pending_user, action):
    body = {"active": True} if action == "active" else {}
    assert anon_api.post(f"/api/v1/users/{pending_user.pk}/{action}", body, format="json").status_code == 401
    for api in (operator_api, viewer_api):
        assert api.post(f"/api/v1/users/{pending_user.pk}/{action}", body, format="json").status_code == 403
    pending_user.refresh_from_db()
    assert pending_user.is_pending


@pytest.mark.parametrize("action", ["approve", "reject", "active"])
def test_outsiders_cannot_approve_reject_or_deactivate_in_the_console(client, operator_user, pending_user, action):
    body = {"active": "true"} if action == "active" else {"role": "admin"}
    assert client.post(f"/accounts/users/{pending_user.pk}/{action}/", body).status_code == 302  # to sign in
    client.force_login(operator_user)
    assert client.post(f"/accounts/users/{pending_user.pk}/{action}/", body).status_code == 403
    pending_user.refresh_from_db()
    assert pending_user.is_pending


def test_an_admin_deactivates_and_reactivates_a_user_and_it_is_audited(console_for, admin_user, viewer_user):
    console = console_for(admin_user)
    assert b"Reactivate" in console.post(f"/accounts/users/{viewer_user.pk}/active/", {"active": "false"}).content
    viewer_user.refresh_from_db()
    assert not viewer_user.is_active and viewer_user.credential_version == 1
    assert b"Deactivate" in console.post(f"/accounts/users/{viewer_user.pk}/active/", {"active": "true"}).content
    assert [e.action for e in AuditEvent.objects.order_by("at")] == ["user.deactivate", "user.activate"]


def test_an_admin_cannot_deactivate_themselves(admin_api, admin_user):
    response = admin_api.post(f"/api/v1/users/{admin_user.pk}/active", {"active": False}, format="json")
    assert response.status_code == 409
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_a_pending_account_is_approved_not_activated(admin_api, pending_user):
    response = admin_api.post(f"/api/v1/users/{pending_user.pk}/active", {"active": True}, format="json")
    assert response.status_code == 409 and "approve" in response.json()["detail"]


def test_registration_is_rate_limited_per_client_ip(client, open_registration, settings, still_clock):
    settings.REGISTRATION_RATE = "2/h"
    for n in range(2):
        client.post("/accounts/register/", {**NEW, "username": f"u{n}", "email": f"u{n}@example.test"})
    response = client.post("/accounts/register/", {**NEW, "username": "u9", "email": "u9@example.test"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert b"Too many requests from your address" in response.content
    assert not User.objects.filter(username="u9").exists()
    other = client.post("/accounts/register/", {**NEW, "username": "u8", "email": "u8@example.test"}, REMOTE_ADDR="198.51.100.2")
    assert other.status_code == 302


def test_a_duplicate_email_or_weak_password_is_refused(client, viewer_user, open_registration):
    response = client.post(
        "/accounts/register/",
        {"username": "dup", "email": viewer_user.email.upper(), "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    assert b"An account with this email already exists." in response.content
    assert b"This password is too short." in response.content
    assert not User.objects.filter(username="dup").exists()


def test_a_user_edits_their_profile(console_for, viewer_user):
    client = console_for(viewer_user)
    response = client.post("/accounts/profile/", {"first_name": "Vera", "last_name": "V", "email": "vera@new.test"})
    assert response.status_code == 302
    viewer_user.refresh_from_db()
    assert (viewer_user.first_name, viewer_user.email) == ("Vera", "vera@new.test")
    event = AuditEvent.objects.get(action="user.update_profile")
    assert sorted(event.data["fields"]) == ["email", "first_name", "last_name"]


def test_a_user_changes_their_password(console_for, viewer_user, client):
    console = console_for(viewer_user)
    response = console.post(
        "/accounts/password/",
        {"old_password": "correct-horse-battery-staple", "new_password1": "an0ther-Passphrase", "new_password2": "an0ther-Passphrase"},
    )
    assert response.status_code == 302
    viewer_user.refresh_from_db()
    assert viewer_user.check_password("an0ther-Passphrase")
    assert AuditEvent.objects.filter(action="user.password_change").exists()
    assert console.get("/").status_code == 200  # this session stays signed in


def test_login_and_logout(client, viewer_user):
    response = client.post("/accounts/login/", {"username": "vera-viewer", "password": "correct-horse-battery-staple"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_a_wrong_password_does_not_sign_in(client, viewer_user):
    response = client.post("/accounts/login/", {"username": "vera-viewer", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_an_admin_promotes_a_viewer_and_it_is_audited(console_for, admin_user, viewer_user):
    response = console_for(admin_user).post(f"/accounts/users/{viewer_user.pk}/role/", {"role": "operator"})
    assert response.status_code == 200
    viewer_user.refresh_from_db()
    assert viewer_user.role == "operator"
    assert AuditEvent.objects.get(action="user.set_role").data == {"from": "viewer", "to": "operator"}


def test_an_unknown_role_is_a_400(console_for, admin_user, viewer_user):
    response = console_for(admin_user).post(f"/accounts/users/{viewer_user.pk}/role/", {"role": "emperor"})
    assert response.status_code == 400


def test_a_token_made_for_a_pending_account_is_refused(anon_api, pending_user):
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(pending_user).access_token}")
    assert anon_api.get("/api/v1/users/me").status_code == 401
