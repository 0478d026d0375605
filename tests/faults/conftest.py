"""One production-like set-up for all fault tests (tests/faults/stack.py: granian web, Celery worker,
dispatcher and beat, private PostgreSQL and Redis, the FCM stand-in), started once: each test
enrolls devices of its own, and whatever a test killed or stopped is running again before the
next one starts."""

import json
import os

import pytest

from tests.faults.stack import SERVICES, Stack

# How long the FCM stand-in refuses every send in the FCM outage test (the issue: a minute;
# `make test` runs a shorter outage, `make faults` the full minute).
FCM_OUTAGE_S = float(os.environ.get("FAULT_FCM_OUTAGE_S", "15"))
# How long a test waits, once the fault is over, for what was answered 200 to reach PostgreSQL.
# Past WRITE_BEHIND_CLAIM_STALE_S (30 s): what a killed flusher held is put back only after it.
SETTLE_S = float(os.environ.get("FAULT_SETTLE_S", "60"))
DEVICES = int(os.environ.get("FAULT_DEVICES", "40"))

COUNTS: list[tuple[str, dict]] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    built = Stack(tmp_path_factory.mktemp("faults"))
    try:
        built.set_up()
        yield built
    finally:
        built.tear_down()


@pytest.fixture
def production(stack, request):
    """The set-up, whole and calm: every service running (restarted if a test killed it), Redis and
    PostgreSQL up, the stand-in answering normally."""
    if not stack.redis.proc or stack.redis.proc.poll() is not None:
        stack.redis.start()
    if not stack.pg.running():
        stack.pg.start()
    stack.held.clear()
    for service in SERVICES:
        if not stack.alive(service):
            stack.start(service)
    stack.standin.fail(error=None)
    stack.standin.config(latency_ms=0)
    stack.exits.clear()
    with stack.supervised():
        yield stack


@pytest.fixture
def report(request):
    """Counts a test reports (sent, answered 200, stored, lost, ...), printed at the end of the run."""

    def add(counts: dict) -> None:
        COUNTS.append((request.node.name, counts))

    return add


def pytest_terminal_summary(terminalreporter):
    if COUNTS:
        terminalreporter.section("fault tests: counts")
        for name, counts in COUNTS:
            terminalreporter.write_line(f"{name}:")
            terminalreporter.write_line("    " + json.dumps(counts))
