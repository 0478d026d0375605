"""The fleet a fuzz run plays against: an admin, enrollment keys (valid, expired, used up), two
devices enrolled through the real enroll endpoint, all committed (transactional_db) so the
application's own transactions behave as in production."""

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.fuzz import harness


@dataclass
class Fleet:
    http: object
    admin: object
    key: str
    expired_key: str
    exhausted_key: str
    device_id: str
    token: str
    kids: list
    other_id: str
    other_token: str
    known_command: str = ""  # a command of the fuzz device's, issued before the run
    others_command: str = ""  # one of the other device's

    _headers: tuple = (0.0, {})

    @property
    def admin_headers(self) -> dict:
        """An access token minted again every minute: a 10,000-case run outlasts one (JWT_ACCESS_MINUTES)."""
        from accounts.tokens import RefreshToken  # with the credential stamp the API checks

        minted, headers = self._headers
        if time.monotonic() - minted > 60:
            headers = {"Authorization": f"Bearer {RefreshToken.for_user(self.admin).access_token}"}
            self._headers = (time.monotonic(), headers)
        return headers


def _enroll(http, key: str, hardware_id: str) -> dict:
    for _ in range(20):  # as a device does: back off on 429/503 (the queue is busy), then retry
        response = http.post("/api/v1/enroll", json={"hardware_id": hardware_id, "model": "Fuzz", "fcm_token": ""},
                             headers={"X-Admin-Key": key})
        if response.status_code not in (429, 503):
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def quiet_eager():
    """No worker in this process: what services hand to Celery on commit runs inline. The request
    log (one line per request) is quieted for the run: at 10,000 cases it is most of the output."""
    import logging

    from mdm.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    loggers = [logging.getLogger(name) for name in ("mdm.request", "httpx", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    yield
    app.conf.task_always_eager = eager
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


@pytest.fixture
def fleet(transactional_db, quiet_eager, settings) -> Fleet:
    from django.utils import timezone

    from accounts.tests.factories import UserFactory
    from enrollment import services as enrollment
    # The registration queue's slots are one Redis key shared by every test run on this machine
    # (enrollment/admission.py): room enough that another run's enrollment storm is not seen here
    # as a 503 (the fuzz is about input, not load).
    settings.ENROLL_CONCURRENCY = 1000
    admin = UserFactory(username="fuzz-admin", role="admin")
    http = harness.client()
    key = enrollment.create_enrollment_key(actor=admin, name="fuzz").raw
    expired = enrollment.create_enrollment_key(actor=admin, name="fuzz-expired", expires_at=timezone.now() - timedelta(hours=1)).raw
    exhausted = enrollment.create_enrollment_key(actor=admin, name="fuzz-exhausted", max_uses=1).raw
    _enroll(http, exhausted, "fuzz-exhausting-device")
    device = _enroll(http, key, "fuzz-hw-0001")
    other = _enroll(http, key, "fuzz-other-device")
    return Fleet(
        http=http,
        admin=admin,
        key=key, expired_key=expired, exhausted_key=exhausted,
        device_id=device["device_id"], token=device["device_token"], kids=sorted(k["kid"] for k in device["command_keys"]),
        other_id=other["device_id"], other_token=other["device_token"],
    )


def pytest_terminal_summary(terminalreporter):
    if harness.SUMMARIES:
        terminalreporter.section("fuzz summary")
        for summary in harness.SUMMARIES:
            terminalreporter.write_line(summary)
