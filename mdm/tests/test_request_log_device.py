"""Device requests get a log line when worth reading (mdm.requestlog), and the log handler never
makes a request wait for a write (mdm.logqueue)."""

import io
import json
import logging
import os

import pytest
from django.core import signals
from django.db import close_old_connections
from pythonjsonlogger.json import JsonFormatter

from mdm import requestlog
from mdm.logqueue import QueuedStreamHandler
from mdm.wsgi import application


@pytest.fixture
def fast_path_beat(enrolled_device, caplog):
    """beat(body) -> (status, [mdm.request records]) through the WSGI fast path."""

    def beat(body=b"{}", token=None):
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/device/heartbeat", "QUERY_STRING": "", "SERVER_NAME": "testserver",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver", "REMOTE_ADDR": "10.0.0.2",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Device {token or enrolled_device.token}",
        }
        statuses = []
        caplog.clear()
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            with caplog.at_level(logging.INFO, logger="mdm.request"):
                response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
                b"".join(response)
                response.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return int(statuses[0].split()[0]), [r for r in caplog.records if r.name == "mdm.request"]

    requestlog.forget_cache()
    yield beat
    requestlog.untrace(str(enrolled_device.device.pk))
    requestlog.forget_cache()


def test_a_quick_200_heartbeat_has_no_line_of_its_own(fast_path_beat):
    status, lines = fast_path_beat()
    assert status == 200 and lines == []


def test_a_refused_heartbeat_is_logged(fast_path_beat):
    status, lines = fast_path_beat(token="nope.nope")
    assert status == 401 and [r.status for r in lines] == [401]


def test_a_slow_request_is_logged(fast_path_beat, settings):
    settings.LOG_SLOW_MS = 0
    status, lines = fast_path_beat()
    assert status == 200 and len(lines) == 1


def test_a_traced_device_has_every_request_logged_until_its_trace_ends(fast_path_beat, enrolled_device):
    requestlog.trace(str(enrolled_device.device.pk), seconds=60)
    requestlog.forget_cache()
    status, lines = fast_path_beat()
    assert status == 200 and [r.device_id for r in lines] == [str(enrolled_device.device.pk)]
    requestlog.untrace(str(enrolled_device.device.pk))
    requestlog.forget_cache()
    assert fast_path_beat()[1] == []


def test_the_trace_command_starts_and_stops_a_trace(enrolled_device):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("trace_device", str(enrolled_device.device.pk), "--minutes", "5", stdout=out)
    assert "for 5 min" in out.getvalue()
    requestlog.forget_cache()
    assert str(enrolled_device.device.pk) in requestlog.traced_devices()
    call_command("trace_device", str(enrolled_device.device.pk), "--stop", stdout=out)
    requestlog.forget_cache()
    assert str(enrolled_device.device.pk) not in requestlog.traced_devices()


def test_the_queued_handler_writes_every_record_in_order_as_json():
    stream = io.StringIO()
    handler = QueuedStreamHandler(stream)
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test.queued")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for i in range(500):
            logger.warning("line %d", i, extra={"n": i})
    finally:
        handler.close()
        logger.removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [x["n"] for x in lines] == list(range(500))
    assert lines[7]["message"] == "line 7"


def test_the_queued_handler_works_in_a_forked_child():
    read, write = os.pipe()
    handler = QueuedStreamHandler(io.StringIO())
    handler.emit(logging.makeLogRecord({"msg": "parent"}))  # the parent's listener exists before the fork
    pid = os.fork()
    if pid == 0:  # the child: its own queue and thread, flushed before it exits
        out = os.fdopen(write, "w")
        handler.target.setStream(out)
        handler.emit(logging.makeLogRecord({"msg": "from the child"}))
        handler.flush_and_stop()
        out.flush()
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    handler.close()
    assert os.read(read, 1000).decode().strip() == "from the child"
