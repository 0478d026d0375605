import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_while_the_process_serves(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_database_and_redis_answer(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def _readyz_in_a_process_with(env_overrides: dict) -> tuple[int, dict]:
    code = (
        "import django, json; django.setup();"
        "from django.test import Client; r = Client().get('/readyz');"
        "print(json.dumps([r.status_code, r.json()]))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mdm.settings", **env_overrides}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    return status, body


def test_readyz_is_503_with_the_database_down():
    status, body = _readyz_in_a_process_with(
        {"DATABASE_URL": "postgres://mdm:mdm@127.0.0.1:1/mdm", "DB_POOL": "false", "ALLOWED_HOSTS": "testserver"}
    )
    assert status == 503
    assert body["checks"]["database"].startswith("error")
    assert body["checks"]["redis"] == "ok"


def test_readyz_is_503_with_redis_down():
    status, body = _readyz_in_a_process_with({"REDIS_URL": "redis://127.0.0.1:1/0", "ALLOWED_HOSTS": "testserver"})
    assert status == 503
    assert body["checks"]["redis"].startswith("error")


def test_health_endpoints_need_no_credentials(client, db):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_accepts_but_never_answers():
    # A PostgreSQL restarting under load (the fault test): connections are accepted and hang.
    # Through the pool the probe waited DB_POOL_TIMEOUT (10 s), past compose's 5 s health-check
    # deadline; it now opens a connection of its own with a short connect timeout.
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        status, body = _readyz_in_a_process_with(
            {"DATABASE_URL": f"postgres://mdm:mdm@127.0.0.1:{port}/mdm", "ALLOWED_HOSTS": "testserver"}
        )
    assert status == 503
    assert body["checks"]["database"].startswith("error")
