"""Settings that protect a production server (issue 14, finding 8): FIELD_ENCRYPTION_KEY set on
purpose outside the embedded default; secure cookies, HSTS and the proxy's SSL header whenever
PUBLIC_BASE_URL is https; the Content-Security-Policy header on every page."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {"DATABASE_URL": "postgres://u:p@db.example:5432/mdm", "REDIS_URL": "redis://cache.example:6379/0", "SECRET_KEY": "x" * 60}
SHOW = ("import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({k: getattr(s, k, None) for k in ('SECURE_SSL', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
        "'SECURE_HSTS_SECONDS', 'SECURE_PROXY_SSL_HEADER', 'SECURE_SSL_REDIRECT', 'FIELD_ENCRYPTION_KEY')}))")


def run(env: dict, tmp_path, code: str = SHOW) -> subprocess.CompletedProcess:
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "PUBLIC_BASE_URL", "SECURE_SSL", "PYTEST_XDIST_WORKER"}
    full = {**{k: v for k, v in os.environ.items() if k not in drop}, "DJANGO_SETTINGS_MODULE": "mdm.settings",
            "MDM_VAR_DIR": str(tmp_path / "var"), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


def shown(env: dict, tmp_path) -> dict:
    result = run(env, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("env", [{"DATABASE_URL": PRODUCTION["DATABASE_URL"]}, {"REDIS_URL": PRODUCTION["REDIS_URL"]}, PRODUCTION])
def test_outside_the_embedded_default_the_start_fails_without_a_field_encryption_key(tmp_path, env):
    result = run(env, tmp_path)
    assert result.returncode != 0
    assert 'Environment variable "FIELD_ENCRYPTION_KEY" must be set' in result.stderr
    assert "Fernet.generate_key()" in result.stderr and "python -m commands.crypto derived-key" in result.stderr


@pytest.mark.parametrize("bad", ["not-a-key", "short", Fernet.generate_key().decode() + ",nope"])
def test_a_malformed_field_encryption_key_fails_the_start_naming_the_variable(tmp_path, bad):
    result = run({**PRODUCTION, "FIELD_ENCRYPTION_KEY": bad}, tmp_path)
    assert result.returncode != 0 and 'Environment variable "FIELD_ENCRYPTION_KEY" invalid' in result.stderr


def test_a_field_encryption_key_set_on_purpose_is_used(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    assert shown({**PRODUCTION, "FIELD_ENCRYPTION_KEY": keys}, tmp_path)["FIELD_ENCRYPTION_KEY"] == keys


def test_the_embedded_default_still_derives_its_key(tmp_path):
    assert shown({}, tmp_path)["FIELD_ENCRYPTION_KEY"] == ""


def test_the_printed_derived_key_reads_what_an_older_server_stored(settings):
    """The upgrade path the start-up message names: the derived key, listed after the new one."""
    from commands import crypto

    settings.FIELD_ENCRYPTION_KEY = ""
    stored = crypto.encrypt_json({"password": "hunter2"})
    printed = subprocess.run([sys.executable, "-m", "commands.crypto", "derived-key"], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "SECRET_KEY": settings.SECRET_KEY}, timeout=60).stdout.strip()
    settings.FIELD_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{printed}"
    assert crypto.decrypt_json(stored) == {"password": "hunter2"}


def test_an_https_public_url_turns_on_secure_cookies_hsts_and_the_proxy_header(tmp_path):
    seen = shown({**PRODUCTION, "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(), "PUBLIC_BASE_URL": "https://mdm.example.com"}, tmp_path)
    assert seen["SECURE_SSL"] is True and seen["SESSION_COOKIE_SECURE"] is True and seen["CSRF_COOKIE_SECURE"] is True
    assert seen["SECURE_HSTS_SECONDS"] == 31536000 and seen["SECURE_SSL_REDIRECT"] is True
    assert seen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_an_http_public_url_keeps_them_off_unless_secure_ssl_is_set(tmp_path):
    plain = shown({"PUBLIC_BASE_URL": "http://127.0.0.1:8000"}, tmp_path)
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0 and plain["SECURE_PROXY_SSL_HEADER"] is None
    forced = shown({"PUBLIC_BASE_URL": "http://127.0.0.1:8000", "SECURE_SSL": "true"}, tmp_path)
    assert forced["SESSION_COOKIE_SECURE"] is True and forced["SECURE_HSTS_SECONDS"] == 31536000


def test_every_console_page_carries_the_content_security_policy(client, admin_user):
    client.force_login(admin_user)
    for path in ("/", "/accounts/login/", "/devices/", "/api/docs/", "/admin/"):
        policy = client.get(path)["Content-Security-Policy"]
        directives = dict((d.split(" ", 1) + [""])[:2] for d in (p.strip() for p in policy.split(";")) if d)
        assert directives["script-src"] == "'self'", path
        assert directives["style-src"] == "'self'", path
        assert directives["object-src"] == "'none'" and directives["base-uri"] == "'self'" and directives["frame-ancestors"] == "'none'"
        assert directives["connect-src"].split() == ["'self'", "ws://127.0.0.1:8000"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
