import io
import json
import logging

import pytest
from django.core import signals
from django.db import close_old_connections

from mdm.middleware import RequestLogMiddleware
from mdm.wsgi import application


def test_each_request_writes_one_line_with_method_path_status_duration_and_user(client, viewer_user, caplog):
    client.force_login(viewer_user)
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get("/readyz?x=1")
    records = [r for r in caplog.records if r.name == "mdm.request"]
    assert len(records) == 1
    r = records[0]
    assert (r.method, r.path, r.status) == ("GET", "/readyz", 200)
    assert r.duration_ms >= 0
    assert r.user_id == str(viewer_user.pk)
    assert r.device_id is None


def test_the_line_is_json(capsys, rf):
    from pythonjsonlogger.json import JsonFormatter

    logger = logging.getLogger("mdm.request")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    try:
        request = rf.get("/somewhere")
        request.device_id = "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c"
        from django.http import HttpResponse

        RequestLogMiddleware(lambda req: HttpResponse(status=204))(request)
    finally:
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "request"
    assert line["path"] == "/somewhere"
    assert line["status"] == 204
    assert line["device_id"] == "3f2b8c1e-6a4d-4e7b-9c2a-1d5e8f0a7b3c"


@pytest.mark.parametrize("path", ["/metrics", "/healthz"])
def test_scrapes_and_probes_are_not_logged(client, db, caplog, path):
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get(path)
    assert not [r for r in caplog.records if r.name == "mdm.request"]


# --- No secrets, and the client IP (issue 14) ---------------------------------------------------
def _lines(caplog):
    return [r for r in caplog.records if r.name == "mdm.request"]


def _reset_link(user):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid, token = urlsafe_base64_encode(force_bytes(user.pk)), default_token_generator.make_token(user)
    return uid, token, f"/accounts/reset/{uid}/{token}/"


@pytest.mark.parametrize("variant", ["as_mailed", "without_trailing_slash", "with_a_typo"])
def test_a_password_reset_token_never_reaches_the_request_log(client, viewer_user, caplog, variant):
    uid, token, link = _reset_link(viewer_user)
    path = {"as_mailed": link, "without_trailing_slash": link.rstrip("/"), "with_a_typo": link + "x/"}[variant]
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        response = client.get(path, follow=True)
    assert response.status_code in (200, 404)
    lines = _lines(caplog)
    assert lines
    for record in lines:
        assert token not in record.path and uid not in record.path, record.path
        assert token not in record.getMessage()
        assert record.path.startswith("/accounts/reset/")


def test_the_set_password_step_is_logged_without_the_uid(client, viewer_user, caplog):
    uid, _, link = _reset_link(viewer_user)
    form_url = client.get(link)["Location"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get(form_url)
    (record,) = _lines(caplog)
    assert record.path == "/accounts/reset/***/***/" and record.status == 200


def test_query_strings_are_never_logged(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get("/readyz?token=s3cr3t&key=k3y")
    (record,) = _lines(caplog)
    assert record.path == "/readyz" and "s3cr3t" not in str(record.__dict__)


def test_the_line_records_the_client_ip_behind_a_trusted_proxy(client, db, caplog, settings):
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get("/readyz", REMOTE_ADDR="172.30.14.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
        client.get("/readyz", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert [r.ip for r in _lines(caplog)] == ["203.0.113.9", "198.51.100.7"]


def test_a_path_with_nul_or_a_huge_length_is_logged_in_loggable_form(client, db, caplog):
    with caplog.at_level(logging.INFO, logger="mdm.request"):
        client.get("/nowhere/%00/" + "a" * 3000)
    (record,) = _lines(caplog)
    assert "\x00" not in record.path and "\\u0000" in record.path and len(record.path) < 530


def test_the_device_fast_path_logs_the_client_ip_too(caplog, settings, enrolled_device):
    # mdm.wsgi is imported with the module: its first import sets logging up again (django.setup),
    # which would drop caplog's handler.
    settings.TRUSTED_PROXIES = ["172.30.14.0/24"]
    settings.LOG_DEVICE_REQUESTS = "all"  # a 200 heartbeat has no line of its own by default (mdm.requestlog)
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/device/heartbeat", "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver", "REMOTE_ADDR": "172.30.14.2",
        "HTTP_X_FORWARDED_FOR": "203.0.113.9", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b"{}"),
        "wsgi.errors": io.StringIO(), "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2",
        "HTTP_AUTHORIZATION": f"Device {enrolled_device.token}",
    }
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with caplog.at_level(logging.INFO, logger="mdm.request"):
            response = application(environ, lambda status, headers, exc_info=None: None)
            b"".join(response)
            response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    (record,) = _lines(caplog)
    assert record.path == "/api/v1/device/heartbeat" and record.ip == "203.0.113.9"
    assert record.device_id == str(enrolled_device.device.pk)
