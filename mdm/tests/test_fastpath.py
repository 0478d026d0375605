"""The WSGI application serves /api/v1/device/* beside the middleware stack (mdm.fastpath): every
answer must be the one the full stack gives, and the rest of the site must not notice."""

import io
import json
import logging
import uuid

import pytest
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from prometheus_client import REGISTRY

from mdm.wsgi import application


def wsgi(method, path, body=b"", token=None, host="testserver", query=""):
    """Call the project's WSGI application as granian would; (status code, headers, body)."""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Device {token}"
    started = []
    # As Django's test client does: the test's transaction holds the connection, so the
    # request cycle must not close it.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        try:
            content = b"".join(response)
        finally:
            response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    status, headers = started[0]
    return int(status.split()[0]), dict(headers), content


def full_stack(method, path, body=b"", token=None, query=""):
    client = Client()
    extra = {"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}
    response = client.generic(method, path + (f"?{query}" if query else ""), data=body,
                              content_type="application/json", **extra)
    return response.status_code, response.content


def _same_shape(fast: bytes, full: bytes):
    """Same JSON keys and values, except the clock."""
    a, b = json.loads(fast), json.loads(full)
    for answer in (a, b):
        answer.pop("server_time", None)
    assert a == b


def test_the_fast_path_is_what_granian_serves():
    assert application.resolver.resolve("/api/v1/device/heartbeat").url_name == "device-heartbeat"


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/api/v1/device/heartbeat", b'{"battery_pct": 50}', True, ""),
        ("POST", "/api/v1/device/heartbeat/", b'{"battery_pct": 51}', True, ""),
        ("POST", "/api/v1/device/heartbeat", b'{"battery_pct": 50}', False, ""),
        ("POST", "/api/v1/device/heartbeat", b"[1, 2]", True, ""),
        ("POST", "/api/v1/device/heartbeat", b"{not json", False, ""),
        ("GET", "/api/v1/device/heartbeat", b"", True, ""),
        ("GET", "/api/v1/device/commands", b"", True, "limit=5"),
        ("GET", "/api/v1/device/commands", b"", True, "limit=zero"),
        ("GET", "/api/v1/device/commands", b"", False, ""),
        ("POST", f"/api/v1/device/commands/{uuid.uuid4()}/result", b'{"status": "succeeded"}', True, ""),
        ("POST", "/api/v1/device/commands/not-a-uuid/result", b'{"status": "succeeded"}', True, ""),
        ("POST", f"/api/v1/device/commands/{uuid.uuid4()}/result", b'{"status": "maybe"}', True, ""),
        ("PUT", "/api/v1/device/inventory", b'{"apps": "none"}', True, ""),
    ],
    ids=lambda case: f"{case[0]} {case[1][:40]} {case[2][:20]!r} token={case[3]} {case[4]}",
)
def test_every_device_answer_matches_the_full_stack(enrolled_device, case):
    method, path, body, with_token, query = case
    token = enrolled_device.token if with_token else None
    fast_status, headers, fast_body = wsgi(method, path, body, token, query=query)
    full_status, full_body = full_stack(method, path, body, token, query=query)
    assert fast_status == full_status
    assert headers["Content-Type"] == "application/json"
    _same_shape(fast_body, full_body)


def test_inventory_is_stored_through_the_fast_path(enrolled_device):
    from devices.models import InstalledApp

    body = json.dumps({"apps": [{"package": "com.example.a", "version_code": 3}]}).encode()
    status, _, _ = wsgi("PUT", "/api/v1/device/inventory", body, enrolled_device.token)
    assert status == 204
    assert list(InstalledApp.objects.filter(device=enrolled_device.device).values_list("package", flat=True)) == ["com.example.a"]


def test_a_host_outside_allowed_hosts_is_refused(enrolled_device):
    status, _, body = wsgi("POST", "/api/v1/device/heartbeat", b"{}", enrolled_device.token, host="evil.example")
    assert status == 400
    assert json.loads(body)["code"] == "bad_request"


def test_other_paths_take_the_full_stack():
    status, headers, _ = wsgi("GET", "/healthz")
    assert status == 200
    status, headers, _ = wsgi("GET", "/devices/")
    assert status == 302 and "/accounts/login" in headers["Location"]  # the auth middleware ran
    status, _, body = wsgi("GET", "/api/v1/device/no-such-thing")
    assert status == 404  # not a device route: Django's own resolver answers


def test_each_request_is_measured_and_logged_under_log_device_requests_all(enrolled_device, caplog, settings):
    settings.LOG_DEVICE_REQUESTS = "all"  # the default logs only notable ones (test_request_log_device.py)

    def served():
        return REGISTRY.get_sample_value(
            "mdm_device_request_seconds_count", {"endpoint": "device/heartbeat", "status": "200"}) or 0

    before = served()
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        status, headers, content = wsgi("POST", "/api/v1/device/heartbeat", b'{"battery_pct": 40}', enrolled_device.token)
    assert status == 200
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Length"] == str(len(content))
    assert served() == before + 1
    [line] = [r for r in caplog.records if r.name == "mdm.request"]
    assert (line.method, line.path, line.status, line.device_id) == (
        "POST", "/api/v1/device/heartbeat", 200, str(enrolled_device.device.pk))


def test_an_unhandled_error_is_a_logged_500_like_djangos(enrolled_device, monkeypatch, caplog):
    from devices import services

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "record_heartbeat", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, _, _ = wsgi("POST", "/api/v1/device/heartbeat", b"{}", enrolled_device.token)
    assert status == 500
    assert any("boom" in (r.exc_text or str(r.exc_info)) for r in caplog.records if r.name == "django.request")
