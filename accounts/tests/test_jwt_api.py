import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from accounts import services
from mdm.models import AuditEvent


def test_a_token_pair_is_issued_for_good_credentials(anon_api, operator_user):
    response = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "correct-horse-battery-staple"}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}


def test_bad_credentials_get_401_with_detail_and_code(anon_api, operator_user):
    response = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "wrong"}, format="json")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] and body["detail"]


def test_missing_fields_get_a_400_naming_them(anon_api, db):
    response = anon_api.post("/api/v1/auth/token/", {"username": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "password" in response.json()["fields"]


def test_the_access_token_authenticates_and_refresh_issues_a_new_one(anon_api, operator_user):
    pair = anon_api.post("/api/v1/auth/token", {"username": "oscar-operator", "password": "correct-horse-battery-staple"}, format="json").json()
    anon_api.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    me = anon_api.get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["role"] == "operator"
    refreshed = anon_api.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()


def test_a_garbage_token_is_401(anon_api, db):
    anon_api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = anon_api.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_only_admins_list_users(admin_api, operator_api, viewer_api, anon_api):
    assert admin_api.get("/api/v1/users").status_code == 200
    assert operator_api.get("/api/v1/users").status_code == 403
    assert viewer_api.get("/api/v1/users").status_code == 403
    assert anon_api.get("/api/v1/users").status_code == 401


def test_an_admin_sets_a_role_through_the_api(admin_api, viewer_user):
    response = admin_api.post(f"/api/v1/users/{viewer_user.pk}/role", {"role": "admin"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "admin"
    bad = admin_api.post(f"/api/v1/users/{viewer_user.pk}/role", {"role": "god"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["fields"]


# --- Rotation, blacklist, and tokens bound to the credential stamp (issue 14) --------------------
NEW_PASSWORD = "brand-New-passphrase-9"


def _pair(username="vera-viewer", password="correct-horse-battery-staple"):
    response = APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _me(access):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/v1/users/me")


def _refresh(refresh):
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")


def test_a_refresh_token_works_once(viewer_user):
    pair = _pair()
    first = _refresh(pair["refresh"])
    assert first.status_code == 200 and set(first.json()) == {"access", "refresh"}
    again = _refresh(pair["refresh"])
    assert again.status_code == 401 and again.json()["code"] == "token_not_valid"
    assert _refresh(first.json()["refresh"]).status_code == 200  # the rotated one works
    assert _me(first.json()["access"]).status_code == 200


def _change_in_console(client, user):
    client.force_login(user)
    response = client.post("/accounts/password/", {"old_password": "correct-horse-battery-staple",
                                                   "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302


def _reset_by_link(client, user):
    link = f"/accounts/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"
    form_url = client.get(link)["Location"]
    assert client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}).status_code == 302


def _set_in_django_admin(client, user):
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "root-Passphrase-1")
    client.force_login(admin)
    response = client.post(f"/admin/accounts/user/{user.pk}/password/",
                           {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302, response.content


def _set_from_the_shell(client, user):
    """manage.py changepassword and any code that sets a password: no service involved."""
    user.set_password(NEW_PASSWORD)
    user.save()


PASSWORD_PATHS = [_change_in_console, _reset_by_link, _set_in_django_admin, _set_from_the_shell]


@pytest.mark.parametrize("change", PASSWORD_PATHS, ids=lambda f: f.__name__.strip("_"))
def test_a_refresh_token_dies_with_a_password_change(client, viewer_user, change):
    pair = _pair()
    change(client, viewer_user)
    response = _refresh(pair["refresh"])
    assert response.status_code == 401 and response.json()["code"] == "token_not_valid"
    assert "password" in response.json()["detail"]


@pytest.mark.parametrize("change", PASSWORD_PATHS, ids=lambda f: f.__name__.strip("_"))
def test_an_access_token_dies_with_a_password_change(client, viewer_user, change):
    pair = _pair()
    assert _me(pair["access"]).status_code == 200
    change(client, viewer_user)
    response = _me(pair["access"])
    assert response.status_code == 401 and response.json()["code"] == "token_not_valid"
    assert _me(_pair(password=NEW_PASSWORD)["access"]).status_code == 200  # a new sign-in works


def test_every_token_dies_with_deactivation_and_stays_dead_after_reactivation(admin_user, viewer_user):
    pair = _pair()
    services.set_active(actor=admin_user, user=viewer_user, active=False)
    assert _me(pair["access"]).status_code == 401
    assert _refresh(pair["refresh"]).status_code == 401
    services.set_active(actor=admin_user, user=viewer_user, active=True)
    assert _me(pair["access"]).status_code == 401
    assert _refresh(pair["refresh"]).status_code == 401
    assert _me(_pair()["access"]).status_code == 200


def test_a_session_dies_with_deactivation_and_stays_dead_after_reactivation(client, admin_user, viewer_user):
    client.force_login(viewer_user)
    assert client.get("/").status_code == 200
    services.set_active(actor=admin_user, user=viewer_user, active=False)
    assert client.get("/").status_code == 302
    services.set_active(actor=admin_user, user=viewer_user, active=True)
    assert client.get("/").status_code == 302


def test_a_password_change_in_the_console_ends_the_users_other_sessions(client, viewer_user):
    other = Client()
    other.force_login(viewer_user)
    _change_in_console(client, viewer_user)
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302


def test_deactivation_through_the_django_admin_goes_through_the_service(client, viewer_user):
    pair = _pair()
    admin = get_user_model().objects.create_superuser("root", "root@example.test", "root-Passphrase-1")
    client.force_login(admin)
    page = client.get(f"/admin/accounts/user/{viewer_user.pk}/change/")
    form = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None and k not in ("groups", "user_permissions", "password", "approved_at", "credential_version")}
    form.update({"is_active": "", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": ""})
    response = client.post(f"/admin/accounts/user/{viewer_user.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    viewer_user.refresh_from_db()
    assert not viewer_user.is_active and viewer_user.credential_version == 1
    assert AuditEvent.objects.filter(action="user.deactivate", actor=admin).exists()
    assert _me(pair["access"]).status_code == 401


def test_expired_refresh_tokens_are_flushed_by_the_periodic_job(viewer_user):
    import time

    import time_machine
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    from accounts.tasks import flush_expired_tokens
    from mdm.celery import app

    _pair()
    assert OutstandingToken.objects.count() == 1
    with time_machine.travel(time.time() + 8 * 86400):
        flush_expired_tokens()
    assert OutstandingToken.objects.count() == 0
    assert any(e["task"] == "accounts.tasks.flush_expired_tokens" for e in app.conf.beat_schedule.values())
