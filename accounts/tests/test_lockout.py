"""Sign-in lockout (django-axes, per username + client IP) and the per-IP failure limit, on the
console, /admin/login/ and POST /api/v1/auth/token; the password-reset limits."""

import time

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from rest_framework.test import APIClient

from conftest import PASSWORD

ATTACKER = "198.51.100.66"
REAL_USER = "203.0.113.10"
NGINX = "172.30.14.2"


def console_login(client, username, password, ip=ATTACKER, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def api_login(username, password, ip=ATTACKER, **extra):
    return APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json", REMOTE_ADDR=ip, **extra)


def fail(times, fn, *args, **kwargs):
    return [fn(*args, **kwargs).status_code for _ in range(times)]


def test_five_failures_lock_the_console_sign_in_with_a_clear_message(client, viewer_user):
    assert fail(4, console_login, client, "vera-viewer", "wrong") == [200] * 4
    locked = console_login(client, "vera-viewer", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts. Try again in 15 minutes." in locked.content
    assert int(locked["Retry-After"]) == 15 * 60
    # Locked means locked: the right password is refused too, and nothing is revealed.
    right = console_login(client, "vera-viewer", PASSWORD)
    assert right.status_code == 429 and client.get("/").status_code == 302


def test_a_locked_out_attacker_cannot_lock_out_the_real_user_from_another_ip(client, viewer_user):
    """The choice: lockout per username AND IP. A per-username lockout would let anyone lock any
    account out by guessing badly on purpose."""
    fail(10, console_login, client, "vera-viewer", "wrong", ip=ATTACKER)
    assert console_login(client, "vera-viewer", "wrong", ip=ATTACKER).status_code == 429
    response = console_login(client, "vera-viewer", PASSWORD, ip=REAL_USER)
    assert response.status_code == 302 and client.get("/").status_code == 200


def test_the_token_endpoint_locks_out_with_a_json_429(viewer_user):
    assert fail(4, api_login, "vera-viewer", "wrong") == [401] * 4
    locked = api_login("vera-viewer", "wrong")
    assert locked.status_code == 429
    assert locked.json() == {"detail": "Too many failed sign-in attempts. Try again in 15 minutes.", "code": "rate_limited"}
    assert int(locked["Retry-After"]) == 15 * 60
    assert api_login("vera-viewer", PASSWORD).status_code == 429
    assert api_login("vera-viewer", PASSWORD, ip=REAL_USER).status_code == 200


def test_failures_count_across_the_console_the_api_and_the_admin_login(client, admin_user):
    console_login(client, "alice-admin", "wrong")
    api_login("alice-admin", "wrong")
    client.post("/admin/login/", {"username": "alice-admin", "password": "wrong"}, REMOTE_ADDR=ATTACKER)
    api_login("alice-admin", "wrong")
    locked = client.post("/admin/login/", {"username": "alice-admin", "password": "wrong"}, REMOTE_ADDR=ATTACKER)
    assert locked.status_code == 429 and b"Too many failed sign-in attempts" in locked.content
    assert client.post("/admin/login/", {"username": "alice-admin", "password": PASSWORD}, REMOTE_ADDR=ATTACKER).status_code == 429


def test_the_lockout_ends_after_the_cool_off(client, viewer_user):
    fail(5, console_login, client, "vera-viewer", "wrong")
    assert console_login(client, "vera-viewer", PASSWORD).status_code == 429
    with time_machine.travel(time.time() + 16 * 60):
        assert console_login(client, "vera-viewer", PASSWORD).status_code == 302


def test_a_success_starts_the_count_again(client, viewer_user):
    fail(4, console_login, client, "vera-viewer", "wrong")
    assert console_login(client, "vera-viewer", PASSWORD).status_code == 302
    client.logout()
    assert fail(4, console_login, client, "vera-viewer", "wrong") == [200] * 4


def test_a_spoofed_forwarded_for_does_not_escape_the_lockout(client, viewer_user, settings):
    settings.TRUSTED_PROXIES = [f"{NGINX}/32"]
    statuses = [console_login(client, "vera-viewer", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(6)]
    assert statuses[-2:] == [429, 429]


def test_behind_the_trusted_proxy_each_client_is_locked_out_alone(client, viewer_user, settings):
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    fail(5, console_login, client, "vera-viewer", "wrong", ip=NGINX, HTTP_X_FORWARDED_FOR=ATTACKER)
    assert console_login(client, "vera-viewer", "wrong", ip=NGINX, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429
    assert console_login(client, "vera-viewer", PASSWORD, ip=NGINX, HTTP_X_FORWARDED_FOR=REAL_USER).status_code == 302


def test_one_ip_trying_many_usernames_hits_the_per_ip_failure_limit(client, viewer_user, settings, still_clock):
    settings.LOGIN_IP_FAILURE_RATE = "6/15m"
    statuses = [console_login(client, f"someone-{n}", "wrong").status_code for n in range(6)]
    assert statuses == [200] * 6
    limited = console_login(client, "vera-viewer", PASSWORD)
    assert limited.status_code == 429 and b"Too many failed sign-in attempts" in limited.content
    assert api_login("vera-viewer", PASSWORD).json()["code"] == "rate_limited"
    assert console_login(client, "vera-viewer", PASSWORD, ip=REAL_USER).status_code == 302


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=st.one_of(
        st.dictionaries(st.sampled_from(["username", "password", "x"]), st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)), max_size=3),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=20),
    )
)
def test_any_body_to_the_token_endpoint_gets_a_4xx_with_detail_and_code(viewer_user, body):
    response = APIClient().post("/api/v1/auth/token", body, format="json", REMOTE_ADDR=ATTACKER)
    assert response.status_code in (400, 401, 429), response.content
    assert {"detail", "code"} <= set(response.json())


@pytest.mark.parametrize("username", ["a\\u0000b", "\\ud800x", "x" * 5000])
def test_a_username_postgresql_cannot_store_is_a_400_not_a_500(db, username):
    body = '{"username": "%s", "password": "p"}' % username  # escapes as a client sends them
    response = APIClient().post("/api/v1/auth/token", body, content_type="application/json")
    assert response.status_code == 400 and "username" in response.json()["fields"]


def test_the_console_sign_in_form_refuses_a_nul_without_a_500(client, db):
    response = console_login(client, "a\x00b", "p")
    assert response.status_code == 200


def test_password_reset_is_limited_per_client_ip(client, viewer_user, settings, still_clock):
    settings.PASSWORD_RESET_RATE = "2/h"
    statuses = [client.post("/accounts/password-reset/", {"email": f"n{n}@example.test"}).status_code for n in range(3)]
    assert statuses == [302, 302, 429]


def test_password_reset_is_limited_per_address_whatever_the_ip(client, viewer_user, settings, still_clock, mailoutbox, eager_celery, capture_on_commit):
    settings.PASSWORD_RESET_RATE = "2/h"
    with capture_on_commit(execute=True):  # the mails are queued on commit (accounts.tasks)
        statuses = [
            client.post("/accounts/password-reset/", {"email": viewer_user.email.upper()}, REMOTE_ADDR=f"192.0.2.{n}").status_code
            for n in range(3)
        ]
    assert statuses == [302, 302, 429]
    assert len(mailoutbox) == 2
    limited = client.post("/accounts/password-reset/", {"email": viewer_user.email}, REMOTE_ADDR="192.0.2.99")
    assert b"Too many requests" in limited.content and int(limited["Retry-After"]) > 0
