"""What every fuzz surface shares: the client, the checks on each answer, the tally, and the checks
that end a run (the write-behind drains to zero; a well-behaved device still shows up).

In process, on purpose: requests go through the production WSGI application (DeviceFastPath in
front of Django, composed as mdm/wsgi.py composes it, which granian serves in docker-compose) by
httpx's WSGI transport, against this run's PostgreSQL test database and Redis. That spares the
HTTP round trip and a second process on a 2-core machine, so a `make fuzz` pass of 10,000 cases
per surface takes minutes; the failure modes that need real processes (a server, a worker, beat,
Redis or PostgreSQL going away) are tests/faults' job.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.signals import got_request_exception

from tests.live import ROOT

# Cases per surface: a seeded, CI-sized pass in `make test`; `make fuzz` sets 10,000.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SEED = int(os.environ.get("FUZZ_SEED", "14"))
WELL_BEHAVED_WITHIN_S = 2.0
# How many distinct failures a summary lists in full (each with one request that shows it).
SHOWN_FAILURES = 12


def wsgi_application():
    """The application granian serves (mdm/wsgi.py) without its heap freeze, which is for a
    server process's start-up and would freeze this test process's objects too."""
    from django.core.wsgi import get_wsgi_application

    from mdm.fastpath import DeviceFastPath

    return DeviceFastPath(get_wsgi_application())


class WSGITransport(httpx.WSGITransport):
    """httpx's WSGI transport with the environ a WSGI server builds (PEP 3333): PATH_INFO is the
    percent-decoded path's bytes as latin-1 (httpx decodes it as UTF-8 with replacement, so a
    path such as /%ED%A0%80 would reach the app changed), header values are latin-1 too."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import io
        from urllib.parse import unquote_to_bytes

        from httpx._transports.wsgi import WSGIByteStream

        request.read()
        path = request.url.raw_path.split(b"?", 1)[0]
        environ = {
            "wsgi.version": (1, 0), "wsgi.url_scheme": request.url.scheme, "wsgi.input": io.BytesIO(request.content),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": request.url.query.decode("latin-1"), "SERVER_NAME": request.url.host,
            "SERVER_PORT": str(request.url.port or 80), "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": self.remote_addr,
        }
        for name, value in request.headers.raw:
            key = name.decode("latin-1").upper().replace("-", "_")
            environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value.decode("latin-1")
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen.update(status=status, headers=headers)
            return lambda _: None

        stream = WSGIByteStream(self.app(environ, start_response))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in seen["headers"]]
        return httpx.Response(int(seen["status"].split()[0]), headers=headers, stream=stream)


def client(app=None) -> httpx.Client:
    transport = WSGITransport(app=app or wsgi_application(), remote_addr="127.0.0.1")
    return httpx.Client(transport=transport, base_url="http://localhost", timeout=30)


@dataclass
class Request:
    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: bytes | None = None

    def describe(self, limit: int = 300) -> str:
        headers = {k: (v if k.lower() not in ("authorization", "x-admin-key") else _redact(v)) for k, v in self.headers.items()}
        body = self.body if self.body is None or len(self.body) <= limit else self.body[:limit] + b"...(%d bytes)" % len(self.body)
        return f"{self.method} {self.path[:200]} headers={headers} body={body!r}"


def _redact(value) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text[:14] + "..." if len(text) > 14 else text


def answer_problems(response: httpx.Response, *, allow_statuses=()) -> list[str]:
    """PROTOCOL.md's rules for any answer: never a 5xx; every refusal a 4xx whose JSON body holds
    `detail` and `code` (a validation error may add `fields`); 429 and 503 carry Retry-After."""
    status = response.status_code
    problems = []
    if status >= 500 and status not in allow_statuses:
        problems.append(f"{status} answer")
    if 400 <= status < 500 or status in allow_statuses:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            problems.append(f"{status} without a JSON object body ({response.headers.get('content-type')})")
        else:
            if not isinstance(body.get("detail"), str) or not body["detail"]:
                problems.append(f"{status} without a `detail` string")
            if not isinstance(body.get("code"), str) or not body["code"]:
                problems.append(f"{status} without a `code` string")
            if "fields" in body and not isinstance(body["fields"], dict):
                problems.append(f"{status} with `fields` that is not an object")
        if status in (429, 503) and not response.headers.get("retry-after"):
            problems.append(f"{status} without Retry-After")
    return problems


class ExceptionLog(logging.Handler):
    """The cause behind this run's 5xx answers: the exception of a 500, from Django's
    got_request_exception signal (sent by the handler that turns an unhandled exception into a
    500, on both WSGI paths), and the error a device endpoint shed as 503 busy (its log line)."""

    SHED_LOGGER = "devices.api.body"

    def __init__(self):
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def __enter__(self):
        got_request_exception.connect(self._record, dispatch_uid="fuzz-exception-log")
        logging.getLogger(self.SHED_LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc):
        got_request_exception.disconnect(dispatch_uid="fuzz-exception-log")
        logging.getLogger(self.SHED_LOGGER).removeHandler(self)

    def _record(self, sender, request=None, **kwargs):
        self.last = describe_exception(*sys.exc_info())

    def emit(self, record: logging.LogRecord) -> None:
        cause = getattr(record, "error", None) or (record.exc_info and record.exc_info[0].__name__)
        self.last = f"{record.getMessage()} ({cause})" if cause else record.getMessage()

    def take(self) -> str | None:
        last, self.last = self.last, None
        return last


def describe_exception(kind, value, tb) -> str | None:
    if kind is None:
        return None
    # Where: the innermost frame of the project's own code (else the innermost of all).
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename and "/site-packages/" not in f.filename]
    frame = (own or frames or [None])[-1]
    where = f"{os.path.relpath(frame.filename, ROOT) if own else os.path.basename(frame.filename)}:{frame.lineno}" if frame else "?"
    # One line: PostgreSQL's first line and its DETAIL, without the statement excerpt (LINE n: ...),
    # which varies with the values and would make every occurrence a failure of its own.
    lines = str(value).splitlines() or [""]
    message = " ".join([lines[0], *(line for line in lines[1:] if line.startswith("DETAIL:"))])
    return f"{kind.__name__}: {message[:160]} (at {where})"


@dataclass
class Tally:
    """Cases, statuses and distinct failures of one surface; failures are recorded, not raised,
    so one pass reports everything it found (the summary shows one request per failure)."""

    surface: str
    cases: int = 0  # generated inputs
    requests: int = 0  # answers checked (a case may be sent more than once)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    places: dict = field(default_factory=dict)  # failure -> the operations it was seen at
    end_checks: list = field(default_factory=list)  # (name, ok, detail)
    seconds: float = 0.0

    def record(self, request: Request | str, response: httpx.Response, exception: str | None = None, where: str = "",
               **check) -> None:
        """One answer checked; `where` (an operation's label) is listed with each failure seen there."""
        self.requests += 1
        self.statuses[response.status_code] += 1
        for problem in answer_problems(response, **check):
            if exception:
                problem = f"{problem}: {exception}"
            elif response.status_code >= 400:
                problem = f"{problem} ({_code_of(response)})"
            self.fail(problem, request if isinstance(request, str) else request.describe(), where)

    def fail(self, signature: str, example: str, where: str = "") -> None:
        self.failures[signature] += 1
        self.examples.setdefault(signature, example)
        if where:
            self.places.setdefault(signature, Counter())[where] += 1

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.end_checks.append((name, ok, detail))
        if not ok:
            self.fail(f"end check failed: {name}: {detail}", "")

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        lines = [f"{self.surface}: {self.cases} cases, {self.requests} requests in {self.seconds:.1f} s; statuses {{{statuses}}}; "
                 f"{sum(self.failures.values())} failing answers/checks, {len(self.failures)} distinct"]
        for name, ok, detail in self.end_checks:
            lines.append(f"  end check {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        for signature, n in self.failures.most_common(SHOWN_FAILURES):
            lines.append(f"  x{n} {signature}")
            if self.places.get(signature):
                places = self.places[signature]
                lines.append(f"      at {len(places)} operation(s): " + ", ".join(f"{p} x{k}" for p, k in places.most_common()))
            if self.examples.get(signature):
                lines.append(f"      e.g. {self.examples[signature]}")
        if len(self.failures) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(self.failures) - SHOWN_FAILURES} more distinct failures")
        return "\n".join(lines)


def _code_of(response: httpx.Response) -> str:
    try:
        return str(json.loads(response.content).get("code"))
    except (ValueError, AttributeError):
        return "no JSON body"


# --- the end of every run ------------------------------------------------------------------------

def writebehind_backlog() -> dict[str, int]:
    """Every queue-like key of the heartbeat and result write-behind under this run's prefix, with
    its length: lists, sets, hashes, sorted sets and streams (the latest-state and inventory-hash
    keys are strings, the command markers live elsewhere). Whatever the flushes use to claim or set
    entries aside (a processing list, a dead-letter list) is counted too: drained means all zero."""
    from mdm import redis_client

    client = redis_client.client()
    lengths = {"list": client.llen, "set": client.scard, "hash": client.hlen, "zset": client.zcard, "stream": client.xlen}
    backlog = {}
    for pattern in (f"{settings.CACHE_PREFIX}:hb:*", f"{settings.CACHE_PREFIX}:cmd:*", f"{settings.CACHE_PREFIX}:*dead*"):
        for raw in client.scan_iter(pattern, count=1000):
            key = raw.decode()
            kind = client.type(raw).decode()
            if kind in lengths and key not in backlog:
                n = lengths[kind](raw)
                if n:
                    backlog[key] = n
    return backlog


def _flushes():
    from commands import services as command_services
    from devices import services as device_services

    return (("heartbeat flush", device_services.flush_heartbeats), ("result flush", command_services.flush_results))


def beat(tally: Tally, after: str) -> None:
    """The flushes beat runs every second, run after each case: a value that reached the
    write-behind but cannot be written is seen at once, named with the case that sent it (left
    for later, a device's next heartbeat would often overwrite it in Redis before any flush)."""
    for name, flush in _flushes():
        try:
            flush()
        except Exception as exc:
            tally.fail(f"{name} raised {describe_exception(type(exc), exc, exc.__traceback__)}", f"after {after}")


def drain(tally: Tally) -> None:
    """What beat does every second, until nothing is left: the heartbeat flush and the result
    flush. A flush that raises, or a queue left non-empty, fails the run."""
    for name, flush in _flushes():
        error = None
        for _ in range(20):  # bounded: each call takes a batch of up to 5,000
            try:
                if not flush():
                    break
            except Exception as exc:  # recorded, not raised: the summary reports it with the rest
                error = describe_exception(type(exc), exc, exc.__traceback__)
                break
        tally.check(f"{name} runs without an error", error is None, error or "")
    backlog = writebehind_backlog()
    tally.check("write-behind queues drained to zero", not backlog, json.dumps(backlog)[:400])


def well_behaved_device_shows(tally: Tally, http: httpx.Client, *, device_id: str, device_token: str,
                              admin_headers: dict, within_s: float = WELL_BEHAVED_WITHIN_S) -> None:
    """A device that did nothing wrong heartbeats; with the heartbeat flush running as beat runs
    it (every second; here every 0.2 s, in this process), its values must show in the admin API
    (GET /api/v1/devices/<id>) within `within_s`."""
    from devices import services as device_services

    values = {"battery_pct": 57, "charging": True, "wifi_ssid": "Depot-5G", "network_type": "wifi", "uptime_s": 424242}
    response = http.post("/api/v1/device/heartbeat", json=values, headers={"Authorization": f"Device {device_token}"})
    if response.status_code != 200:
        tally.check("a well-behaved device's heartbeat is answered 200", False, f"{response.status_code} {response.text[:200]}")
        return
    started = time.monotonic()
    seen, error = None, None
    while time.monotonic() - started < within_s:
        try:
            device_services.flush_heartbeats()
        except Exception as exc:
            error = describe_exception(type(exc), exc, exc.__traceback__)
        answer = http.get(f"/api/v1/devices/{device_id}", headers=admin_headers)
        if answer.status_code == 200:
            seen = answer.json().get("status", {})
            if all(seen.get(k) == v for k, v in values.items()):
                tally.check(f"a well-behaved device's heartbeat shows in the admin API within {within_s:g} s", True,
                            f"after {time.monotonic() - started:.2f} s")
                return
        else:
            seen = f"{answer.status_code} {answer.text[:120]}"
        time.sleep(0.2)
    tally.check(f"a well-behaved device's heartbeat shows in the admin API within {within_s:g} s", False,
                f"admin API shows {str(seen)[:200]}" + (f"; flush: {error}" if error else ""))


# Summaries of this session's runs, printed at the end of the session (tests/fuzz/conftest.py).
SUMMARIES: list[str] = []
