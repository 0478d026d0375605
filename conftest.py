"""Shared personas and helpers for every test: an admin, an operator, a viewer, API clients that
carry their JWT, and (from devices/tests/factories.py) devices in different groups."""

import os

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple"


def _clear_cache():
    """Delete this run's keys only (cache.clear() would FLUSHDB other runs' keys too)."""
    from django.conf import settings

    if not settings.REDIS_URL:
        cache.clear()
        return
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(f"{settings.CACHE_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database of this run's own, so concurrent runs on one PostgreSQL do not collide."""
    from django.conf import settings

    from django.db import connections

    test = settings.DATABASES["default"].setdefault("TEST", {})
    test["NAME"] = f"test_{settings.DATABASES['default']['NAME']}_{os.getpid()}"
    # Django's create_test_db does not close the psycopg pool (only clone/destroy do): a pool
    # opened earlier against the real database would keep serving it, and the test schema would
    # be migrated into the wrong database. Close it so the next one opens on the test database.
    for conn in connections.all():
        if conn.vendor == "postgresql":
            conn.close_pool()


@pytest.fixture(autouse=True)
def _isolated_state(settings):
    """Each test starts with an empty cache and the fleet settings re-read from the database."""
    from mdm.models import FleetSettings

    _clear_cache()
    FleetSettings.forget_cached()
    yield
    FleetSettings.forget_cached()


@pytest.fixture
def still_clock():
    """Wall time stands still for the test. django-ratelimit counts in fixed windows (a 15-minute
    one ends at a moment set by the key), so a test counting to a limit could straddle a window's
    end and see the count start again: rarely, more often on a slow machine."""
    import time

    import time_machine

    with time_machine.travel(time.time(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def admin_user(db):
    return UserFactory(username="alice-admin", role="admin", password=PASSWORD)


@pytest.fixture
def operator_user(db):
    return UserFactory(username="oscar-operator", role="operator", password=PASSWORD)


@pytest.fixture
def viewer_user(db):
    return UserFactory(username="vera-viewer", role="viewer", password=PASSWORD)


def _api_client_for(user) -> APIClient:
    from accounts.tokens import RefreshToken  # with the credential stamp the API checks

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def api_client_for():
    return _api_client_for


@pytest.fixture
def admin_api(admin_user):
    return _api_client_for(admin_user)


@pytest.fixture
def operator_api(operator_user):
    return _api_client_for(operator_user)


@pytest.fixture
def viewer_api(viewer_user):
    return _api_client_for(viewer_user)


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def console_for(client):
    """A console (session) client signed in as the given user."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def capture_on_commit(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


# Playwright's sync API runs an event loop in the test thread; the ORM calls made by the same
# test are still synchronous and safe.
import os  # noqa: E402

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def live_server_proc(transactional_db, settings, tmp_path):
    """A real daphne process serving the app against this test's database (committed data only,
    hence transactional_db)."""
    from tests.live import LiveServer, env_for_test_database

    # No Celery worker or beat beside it: tasks run inline and the periodic jobs (heartbeat flush,
    # offline sweep, ...) run in the server process, as in the embedded default.
    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "true"}
    server = LiveServer(env, log_path=tmp_path / "live-server.log")
    server.start()
    yield server
    server.stop()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser():
    # Module scope: Playwright's sync API keeps an event loop running in this thread while it
    # lives, which would break the async tests of later modules (pytest-asyncio).
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def eager_celery():
    """Tasks queued by the code under test run inside the test, as in the embedded default."""
    from mdm.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) on localhost, Django's SMTP backend pointed at it: its Inbox."""
    from aiosmtpd.controller import Controller

    from tests.live import free_port
    from tests.smtp import Inbox

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.PUBLIC_BASE_URL = "http://console.example"
    yield inbox
    controller.stop()


# --- Device personas (devices/tests/factories.py) ---------------------------------------------
@pytest.fixture
def group_a(db):
    from devices.tests.factories import DeviceGroupFactory

    return DeviceGroupFactory(name="warehouse-a")


@pytest.fixture
def group_b(db):
    from devices.tests.factories import DeviceGroupFactory

    return DeviceGroupFactory(name="stores-b")


@pytest.fixture
def device_in_group_a(group_a):
    from devices.tests.factories import DeviceFactory

    return DeviceFactory(group=group_a, alias="scanner-a1")


@pytest.fixture
def device_of_other_group(group_b):
    from devices.tests.factories import DeviceFactory

    return DeviceFactory(group=group_b, alias="kiosk-b1")


@pytest.fixture
def enrolled_device(device_in_group_a):
    """A device of group A holding a valid device token: `.device`, `.token`, `.auth` (test
    client headers) and `.headers` (httpx headers)."""
    from devices.tests.factories import enroll_for_test

    return enroll_for_test(device_in_group_a)


@pytest.fixture
def other_enrolled_device(device_of_other_group):
    from devices.tests.factories import enroll_for_test

    return enroll_for_test(device_of_other_group)
