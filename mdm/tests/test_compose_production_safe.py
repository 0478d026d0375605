"""docker-compose.yml is production-safe by default (issue 14, finding 8). No Docker engine here,
so compose's own variable interpolation is done by `interpolate` below (the `${VAR}`, `${VAR:-x}`
and `${VAR:?message}` forms of the Compose specification) and what it yields is checked: no
secret has a default, a missing one stops compose with a message naming it, the public URL is
https, DEBUG is off; Django started with that environment runs with secure cookies, HSTS and the
proxy's SSL header, passes `check --deploy`, and keeps /metrics closed; nginx terminates TLS and
only redirects on port 80."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
ENV_EXAMPLE = (ROOT / "deploy" / "env.example").read_text()
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")
REQUIRED = {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "MDM_HOST", "TLS_CERT_DIR"}
FILLED = {
    "SECRET_KEY": "k" * 20 + "Zq8$Lm2!vR7#pW4^nX9&bT3*" + "j" * 20,
    "FIELD_ENCRYPTION_KEY": "cHJvZHVjdGlvbi1saWtlLWZpZWxkLWtleS0wMTIzNDU=",
    "POSTGRES_PASSWORD": "pg-secret-0123456789",
    "REDIS_PASSWORD": "redis-secret-0123456789",
    "MDM_HOST": "mdm.example.com",
    "TLS_CERT_DIR": "/etc/letsencrypt/live/mdm.example.com",
}


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict) -> str:
    def one(match):
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return VARIABLE.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def compose(env: dict) -> dict:
    """The file as compose reads it: YAML first, then every string value interpolated."""

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return walk(yaml.safe_load(COMPOSE_TEXT))


def app_environment(env: dict) -> dict:
    return {k: str(v) for k, v in compose(env)["services"]["web"]["environment"].items()}


def test_every_secret_is_required_and_none_has_a_default():
    uses = {}
    for match in VARIABLE.finditer(COMPOSE_TEXT):
        uses.setdefault(match["name"], set()).add((match["op"], match["arg"]))
    for name in REQUIRED:
        assert uses.get(name) and all(op == ":?" and arg.strip() for op, arg in uses[name]), name
    for name, forms in uses.items():
        if SECRET_NAME.search(name):
            # A secret is either required, or optional and empty (METRICS_TOKEN: empty means closed).
            assert all(op == ":?" or (op == ":-" and arg == "") for op, arg in forms), (name, forms)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_stops_with_a_message_naming_each_missing_variable(missing):
    with pytest.raises(MissingVariable, match=f"required variable {missing} is missing a value: set {missing} in .env"):
        compose({k: v for k, v in FILLED.items() if k != missing})


def test_no_secret_is_written_into_the_file():
    data = yaml.safe_load(COMPOSE_TEXT)
    for name, service in [("x-app", data["x-app"]), *data["services"].items()]:
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert str(value).startswith(f"${{{key}:"), (name, key)  # from the environment, not the file
    assert "POSTGRES_PASSWORD:-" not in COMPOSE_TEXT and ":mdm@" not in COMPOSE_TEXT


def test_the_app_runs_https_with_debug_off():
    env = app_environment(FILLED)
    assert env["PUBLIC_BASE_URL"] == "https://mdm.example.com"
    assert env["DEBUG"] == "false"
    assert env["ALLOWED_HOSTS"].split(",") == ["mdm.example.com", "localhost"]
    assert env["METRICS_TOKEN"] == ""
    web = compose(FILLED)["services"]["web"]["environment"]
    for service in ("web", "sync", "console", "ws", "worker", "dispatcher", "beat", "migrate"):
        own = dict(compose(FILLED)["services"][service]["environment"])
        # The Celery services serve their own /metrics (mdm/metrics.py); the rest is the same everywhere.
        assert own.pop("METRICS_PORT", None) == ("9100" if service in ("worker", "dispatcher") else None)
        assert own == web
        assert f"{own['PROMETHEUS_MULTIPROC_DIR']}:mode=1777" in compose(FILLED)["services"][service]["tmpfs"]


def test_the_health_checks_use_a_host_the_app_allows():
    services = compose(FILLED)["services"]
    allowed = app_environment(FILLED)["ALLOWED_HOSTS"].split(",")
    for name in ("web", "sync", "console", "ws"):
        host = re.search(r"https?://([^:/']+)", " ".join(services[name]["healthcheck"]["test"])).group(1)
        assert host in allowed, (name, host)
    assert "https://localhost/healthz" in services["proxy"]["healthcheck"]["test"]


def _django(env: dict, code: str, tmp_path) -> subprocess.CompletedProcess:
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "PUBLIC_BASE_URL", "SECURE_SSL", "DEBUG",
            "ALLOWED_HOSTS", "METRICS_TOKEN", "METRICS_ALLOWED_IPS", "PYTEST_XDIST_WORKER", "DJANGO_ALLOW_ASYNC_UNSAFE",
            "DEV_TOOLS", "BENCH_NAIVE_VIEW"}
    full = {**{k: v for k, v in os.environ.items() if k not in drop}, **env, "DJANGO_SETTINGS_MODULE": "mdm.settings",
            "MDM_VAR_DIR": str(tmp_path), "STORAGE_URL": f"file://{tmp_path / 'media'}"}
    return subprocess.run([sys.executable, *code.split()] if code.startswith("manage.py") else [sys.executable, "-c", code],
                          cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


def test_django_with_the_compose_environment_is_locked_down(tmp_path):
    code = ("import django, json; django.setup(); from django.conf import settings as s;"
            "print(json.dumps([s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,"
            " s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.METRICS_TOKEN, [str(n) for n in s.METRICS_ALLOWED_NETWORKS],"
            " s.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src']]))")
    result = _django(app_environment(FILLED), code, tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    debug, session, csrf, hsts, proxy, redirect, token, networks, connect = json.loads(result.stdout.strip().splitlines()[-1])
    assert (debug, session, csrf, redirect) == (False, True, True, True)
    assert hsts >= 31536000 and proxy == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert token == "" and networks == []  # /metrics closed until a token is set
    assert connect == ["'self'", "wss://mdm.example.com"]


def test_check_deploy_passes_with_the_compose_environment(tmp_path):
    result = _django(app_environment(FILLED), "manage.py check --deploy --fail-level WARNING", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


DEV_TOOLS_SEEN = """
import json
import django
django.setup()
from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve
try:
    resolve("/bench/naive-heartbeat")
    routed = True
except Resolver404:
    routed = False
print(json.dumps([settings.DEV_TOOLS, "loadtest" in settings.INSTALLED_APPS,
                  sorted({"simulate_fleet", "fcm_standin"} & set(get_commands())), routed]))
"""


def test_the_dev_tools_are_not_installed_with_the_compose_environment(tmp_path):
    assert "DEV_TOOLS" not in COMPOSE_TEXT and "BENCH_NAIVE_VIEW" not in COMPOSE_TEXT
    result = _django(app_environment(FILLED), DEV_TOOLS_SEEN, tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout.strip().splitlines()[-1]) == [False, False, [], False]


def test_nginx_terminates_tls_and_only_redirects_plain_http():
    servers = re.split(r"\n(?=server \{)", NGINX)
    plain = next(s for s in servers if "listen 80;" in s)
    tls = next(s for s in servers if "listen 443 ssl;" in s)
    assert "proxy_pass" not in plain and "return 301 https://$host$request_uri;" in plain
    for server in (plain, tls):  # both log without query strings or reset tokens (the `mdm` format)
        assert "access_log /var/log/nginx/access.log mdm;" in server
    assert "ssl_certificate /etc/nginx/tls/fullchain.pem;" in tls and "ssl_certificate_key /etc/nginx/tls/privkey.pem;" in tls
    assert "TLSv1 " not in tls and "TLSv1.1" not in tls
    # Every proxied location says https itself (a client's own X-Forwarded-Proto is never passed on),
    # or is nested in `/` and sets no header of its own, so that it inherits all of `/`'s (nginx
    # inherits proxy_set_header only into a level that defines none). A location that proxies
    # nothing is internal: the X-Accel-Redirect target of APK downloads, docs/apks.md.
    top = re.findall(r"^    location [^{]+\{[^}]*\}", tls, re.M)  # `/` up to its first nested location
    nested = re.findall(r"^        location [^{]+\{[^}]*\}", tls, re.M)
    proxied = [location for location in top if "proxy_pass" in location]
    assert len(proxied) == 2 and len(nested) == 4  # /ws/ and /; uploads, the device API, its policy channel, the enrollment
    for location in proxied:
        assert "proxy_set_header X-Forwarded-Proto https;" in location
    assert all("proxy_pass" in location for location in nested)
    assert all("proxy_set_header" not in location for location in nested)
    assert all("internal;" in location for location in top if "proxy_pass" not in location)
    mounts = compose(FILLED)["services"]["proxy"]["volumes"]
    assert f"{FILLED['TLS_CERT_DIR']}:/etc/nginx/tls:ro" in mounts
    assert "${HTTPS_PORT:-443}:443" in COMPOSE_TEXT


def test_the_env_example_lists_every_required_variable_and_no_value():
    for name in REQUIRED:
        line = re.search(rf"^{name}=(.*)$", ENV_EXAMPLE, re.M)
        assert line, name
        if SECRET_NAME.search(name):
            assert line.group(1) == "", name  # the example never ships a usable secret


def test_the_image_build_needs_no_real_secret():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "collectstatic" in dockerfile and "ENV SECRET_KEY" not in dockerfile and "ENV FIELD_ENCRYPTION_KEY" not in dockerfile


def test_redis_asks_for_its_password_and_the_app_sends_it():
    # Whoever writes to Redis can act as any device (docs/threat-model.md).
    services = compose(FILLED)["services"]
    assert services["redis"]["command"][-2:] == ["--requirepass", FILLED["REDIS_PASSWORD"]]
    assert "ports" not in services["redis"]
    assert app_environment(FILLED)["REDIS_URL"] == f"redis://:{FILLED['REDIS_PASSWORD']}@redis:6379/0"
