from mdm.metrics import HEARTBEATS


def test_metrics_exposes_django_and_our_own_counters(client, db):
    HEARTBEATS.labels("ok").inc()
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in body
    assert 'mdm_heartbeats_total{result="ok"}' in body


def test_metrics_has_database_pool_gauges(client, db):
    client.get("/readyz")  # opens the pool
    body = client.get("/metrics").content.decode()
    assert 'mdm_db_pool_max{alias="default"}' in body
    assert 'mdm_db_pool_size{alias="default"}' in body
