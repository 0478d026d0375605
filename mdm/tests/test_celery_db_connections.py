"""A real prefork Celery worker keeps its PostgreSQL connections from one task to the next.

Celery's Django fixup closed Django's connection pool before and after every task (celery 5.7,
celery/celery#10554), so each task started new PostgreSQL backends; mdm/celery.py turns that off
and returns connections to the pool around each task instead. Seen from PostgreSQL: the worker's
backends, sampled while it runs tasks one after another, stay the few its pools hold."""

import os
import time

import pytest
from django.db import connection

from commands.tests.test_dispatch_worker import Worker
from mdm.celery import app
from tests.live import env_for_test_database

pytestmark = [pytest.mark.slow, pytest.mark.live]

TASKS = 12
GAP_S = 0.4  # between tasks: a backend opened for one task would live until the next one's start
APP_NAME = "mdm-connection-test-worker"  # libpq's PGAPPNAME: tells the worker's backends from any other


def worker_backends() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                       [APP_NAME])
        return {row[0] for row in cursor.fetchall()}


def sample_for(seconds: float) -> set[int]:
    seen: set[int] = set()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        seen |= worker_backends()
        time.sleep(0.02)
    return seen


def test_a_worker_keeps_its_database_connections_from_task_to_task(transactional_db, settings, tmp_path):
    log = tmp_path / "worker.log"
    worker = Worker({**os.environ, **env_for_test_database(settings), "PGAPPNAME": APP_NAME}, log).start()
    seen: set[int] = set()
    try:
        for _ in range(TASKS):
            app.send_task("commands.tasks.expire_deliveries")  # one UPDATE: touches the database
            seen |= sample_for(GAP_S)
        seen |= sample_for(GAP_S)
    finally:
        worker.stop()
    # Every task reached the worker (its "succeeded" line is not logged: celery.app.trace is at WARNING).
    assert log.read_text(errors="ignore").count("commands.tasks.expire_deliveries[") == TASKS
    # The worker's three processes (its main one and two pool children) hold a pool each, at its
    # min_size (2) when idle between tasks: at most 6 backends, whatever the number of tasks. With
    # the pool closed around each task, every task started new ones (32 seen for 12 tasks).
    assert 1 <= len(seen) <= 3 * settings.DATABASES["default"]["OPTIONS"]["pool"]["min_size"] < TASKS, sorted(seen)
