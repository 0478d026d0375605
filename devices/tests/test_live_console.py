"""In a real browser: a device heartbeats through the API and the open devices page shows its
new battery level without a reload (daphne + Redis channel layer + htmx ws extension)."""

import httpx
import pytest
from django.conf import settings as django_settings

from devices.tests.factories import enroll_for_test
from tests.live import LiveServer, env_for_test_database

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_live_server(transactional_db, settings, tmp_path, monkeypatch):
    # No Celery worker runs in tests: the debounced flush task runs inline in the server.
    monkeypatch.setenv("CELERY_TASK_ALWAYS_EAGER", "true")
    server = LiveServer(env_for_test_database(settings), log_path=tmp_path / "live-server.log")
    server.start()
    yield server
    server.stop()


def signed_in(page, server, client, user):
    client.force_login(user)
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value, "url": server.url}]
    )


def test_the_devices_page_shows_a_new_battery_level_without_a_reload(eager_live_server, page, client, admin_user, device_in_group_a):
    enrolled = enroll_for_test(device_in_group_a)
    device_id = enrolled.device.pk
    httpx.post(eager_live_server.url + "/api/v1/device/heartbeat", json={"battery_pct": 81}, headers=enrolled.headers).raise_for_status()

    signed_in(page, eager_live_server, client, admin_user)
    page.goto(eager_live_server.url + "/devices/")
    battery = page.locator(f"#dev-{device_id}-battery")
    battery.get_by_text("81%").wait_for()
    page.locator("#live-indicator.on").wait_for()  # the WebSocket is open
    marker = page.evaluate("() => (window.__noReload = true)")

    answer = httpx.post(eager_live_server.url + "/api/v1/device/heartbeat", json={"battery_pct": 37, "charging": True}, headers=enrolled.headers)
    assert answer.status_code == 200

    battery.get_by_text("37%").wait_for(timeout=15000)
    assert page.evaluate("() => window.__noReload") is marker is True
    assert page.locator(f"#dev-{device_id}-state").inner_text() == "online"
