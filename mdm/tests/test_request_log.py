import json
import logging

import pytest

from mdm.middleware import RequestLogMiddleware


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
