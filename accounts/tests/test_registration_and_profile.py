from django.contrib.auth import get_user_model

from mdm.models import AuditEvent

User = get_user_model()


def test_a_new_account_starts_as_viewer_and_is_signed_in(client, db):
    response = client.post(
        "/accounts/register/",
        {"username": "newbie", "email": "New@Example.test", "password1": "s3cret-Passphrase!", "password2": "s3cret-Passphrase!"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    user = User.objects.get(username="newbie")
    assert user.role == "viewer" and user.email == "new@example.test"
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="user.register", target_id=str(user.pk)).exists()


def test_the_starting_role_is_configurable(client, db, settings):
    settings.REGISTRATION_DEFAULT_ROLE = "operator"
    client.post(
        "/accounts/register/",
        {"username": "op", "email": "op@example.test", "password1": "s3cret-Passphrase!", "password2": "s3cret-Passphrase!"},
    )
    assert User.objects.get(username="op").role == "operator"


def test_registration_can_be_closed(client, db, settings):
    settings.REGISTRATION_OPEN = False
    assert client.get("/accounts/register/").status_code == 404


def test_a_duplicate_email_or_weak_password_is_refused(client, viewer_user):
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
