import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s;"
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'init': s.DATABASES['default'].get('OPTIONS', {}).get('init_command', ''),"
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'eager': s.CELERY_TASK_ALWAYS_EAGER, 'sched': s.EMBEDDED_SCHEDULER,"
    "'email': s.EMAIL_BACKEND, 'storage': s.STORAGES['default']['BACKEND'], 'cache': s.CACHES['default']['BACKEND']}))"
)


def run_python(code: str, env: dict, tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "EMAIL_URL", "DEBUG", "PYTEST_XDIST_WORKER"}}
    clean.update({"DJANGO_SETTINGS_MODULE": "mdm.settings", "MDM_VAR_DIR": str(tmp_path / "var"), **env})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_the_suite_really_talks_to_postgresql(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert cursor.fetchone()[0].startswith("PostgreSQL")


def test_no_environment_at_all_runs_the_embedded_default(tmp_path):
    result = run_python(PRINT_SETTINGS, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "db": "django.db.backends.sqlite3",
        "init": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
        "layer": "channels.layers.InMemoryChannelLayer",
        "eager": True,
        "sched": True,
        "email": "django.core.mail.backends.console.EmailBackend",
        "storage": "django.core.files.storage.FileSystemStorage",
        "cache": "django.core.cache.backends.locmem.LocMemCache",
    }
    # The generated secret key is kept for the next start.
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_production_environment_switches_every_integration(tmp_path):
    env = {
        "DATABASE_URL": "postgres://u:p@db.example:5432/mdm",
        "REDIS_URL": "redis://cache.example:6379/0",
        "EMAIL_URL": "smtp://mailer:secret@smtp.example:587/?tls=True",
        "SECRET_KEY": "x" * 60,
    }
    result = run_python(PRINT_SETTINGS, env, tmp_path)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["db"] == "django.db.backends.postgresql"
    assert seen["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert seen["eager"] is False and seen["sched"] is False
    assert seen["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert seen["cache"] == "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(
    "name,value",
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "not a url"),
        ("DB_POOL_MAX", "many"),
        ("REGISTRATION_DEFAULT_ROLE", "emperor"),
        ("TRUSTED_PROXIES", "172.30.14.0/24,nginx"),
        ("LOGIN_IP_FAILURE_RATE", "lots"),
        ("PASSWORD_RESET_RATE", "5 per hour"),
        ("STORAGE_URL", "ftp://bucket"),
        ("STORAGE_URL", "s3://bucket?secret_key=x"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_fails_at_start_up_naming_the_variable(tmp_path, name, value):
    env = {name: value}
    if name != "DATABASE_URL":
        env["DATABASE_URL"] = "postgres://u:p@localhost:5432/mdm"
    result = run_python("import django; django.setup()", env, tmp_path)
    assert result.returncode != 0
    assert name in result.stderr
