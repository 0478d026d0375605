"""/metrics: Prometheus exposition for the scraper only. A bearer token (METRICS_TOKEN) or the
scraper's own address (METRICS_ALLOWED_IPS); closed when neither is set (production), open to the
loopback in the embedded default."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdm.metrics import HEARTBEATS

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-me-0123456789abcdef"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_metrics_exposes_django_and_our_own_counters(client, db, token):
    HEARTBEATS.labels("ok").inc()
    client.get("/healthz")
    body = client.get("/metrics", **token).content.decode()
    assert "django_http_requests_total_by_method_total" in body
    assert 'mdm_heartbeats_total{result="ok"}' in body


def test_metrics_has_database_pool_gauges(client, db, token):
    client.get("/readyz")  # opens the pool
    body = client.get("/metrics", **token).content.decode()
    assert 'mdm_db_pool_max{alias="default"}' in body
    assert 'mdm_db_pool_size{alias="default"}' in body


def test_without_a_token_or_an_allowed_address_metrics_are_closed(client, db, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json() == {"detail": "Metrics are not served to this address.", "code": "permission_denied"}
    assert b"mdm_" not in response.content


@pytest.mark.parametrize("header", ["", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_a_missing_or_wrong_token_is_refused(client, db, token, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer") and response.json()["code"] == "not_authenticated"


def test_an_allowed_address_scrapes_without_a_token(client, db, settings):
    import ipaddress

    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.1.2.0/24")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.3.7").status_code == 403
    # A forwarded header is the client's own to write: the TCP peer decides.
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.2.7").status_code == 403


def _metrics_settings(env: dict, tmp_path) -> dict:
    code = ("import django, json; django.setup(); from django.conf import settings as s;"
            "print(json.dumps({'token': s.METRICS_TOKEN, 'networks': [str(n) for n in s.METRICS_ALLOWED_NETWORKS]}))")
    drop = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "METRICS_TOKEN", "METRICS_ALLOWED_IPS", "PYTEST_XDIST_WORKER"}
    full = {**{k: v for k, v in os.environ.items() if k not in drop}, "DJANGO_SETTINGS_MODULE": "mdm.settings",
            "MDM_VAR_DIR": str(tmp_path), **env}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_lets_the_loopback_scrape_and_production_nobody(tmp_path):
    assert _metrics_settings({}, tmp_path) == {"token": "", "networks": ["127.0.0.0/8", "::1/128"]}
    production = {"DATABASE_URL": "postgres://u:p@db.example:5432/mdm", "SECRET_KEY": "x" * 60}
    assert _metrics_settings(production, tmp_path) == {"token": "", "networks": []}
    chosen = _metrics_settings({**production, "METRICS_ALLOWED_IPS": "10.0.0.5,172.20.0.0/16"}, tmp_path)
    assert chosen["networks"] == ["10.0.0.5/32", "172.20.0.0/16"]


def test_a_bad_allowed_address_fails_the_start_naming_the_variable(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}, "DJANGO_SETTINGS_MODULE": "mdm.settings",
           "MDM_VAR_DIR": str(tmp_path), "METRICS_ALLOWED_IPS": "10.0.0.0/33"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "METRICS_ALLOWED_IPS" in result.stderr


def test_every_series_of_ours_is_in_the_readme_catalogue():
    from prometheus_client.metrics import MetricWrapperBase

    from mdm import metrics

    readme = (ROOT / "README.md").read_text()
    catalogue = readme[readme.index("**Metrics.**"):readme.index("## API")]
    ours = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    assert len(ours) >= 12
    for metric in ours:
        name = metric.describe()[0].name  # a counter's without its _total
        assert f"`{name}" in catalogue, f"{name} is not in the README's metrics table"
    assert "`mdm_db_pool_*" in catalogue
