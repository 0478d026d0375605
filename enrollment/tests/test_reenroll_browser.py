"""In a real browser (Debian's Chromium) against a real daphne: a known device enrolls again
without its token and waits; an admin sees the pending count in the navigation, approves the
request on the requests page (the row and the count change in place, by htmx), and the device's
repeat with its request id re-enrolls it."""

import httpx
import pytest

from conftest import PASSWORD
from tests.live import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_an_admin_approves_a_waiting_device_from_the_console(live_server_proc, page, admin_user, tmp_path):
    from enrollment.services.keys import create_enrollment_key

    url = live_server_proc.url
    key = create_enrollment_key(actor=admin_user, name="Berlin rollout").raw
    headers = {"X-Admin-Key": key}
    first = httpx.post(f"{url}/api/v1/enroll", json={"hardware_id": "R52T-0042", "model": "Galaxy Tab A8"}, headers=headers)
    token = first.json()["device_token"]
    assert httpx.post(f"{url}/api/v1/device/heartbeat", json={}, headers={"Authorization": f"Device {token}"}).status_code == 200
    # After a factory reset: same serial, no token.
    asked = httpx.post(f"{url}/api/v1/enroll", json={"hardware_id": "R52T-0042", "model": "Galaxy Tab A8"}, headers=headers)
    assert asked.status_code == 409
    request_id = asked.json()["reenroll_request"]

    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.locator("#reenroll-pending-count").get_by_text("1").wait_for()

    page.click("nav[aria-label=Main] >> text=Re-enrollment")
    page.wait_for_url(url + "/enrollment/reenroll-requests/")
    row = page.locator(f"#reenroll-{request_id}")
    assert "Galaxy Tab A8" in row.inner_text() and "Berlin rollout" in row.inner_text()
    save_screenshot(page, tmp_path, "reenroll-requests.png")
    row.get_by_role("button", name="Approve").click()
    row.get_by_text("approved").wait_for()
    page.wait_for_function("() => document.getElementById('reenroll-pending-count').textContent.trim() === ''")
    assert row.get_by_role("button", name="Withdraw").is_visible()
    assert errors == []

    again = httpx.post(f"{url}/api/v1/enroll", json={"hardware_id": "R52T-0042", "reenroll_request": request_id}, headers=headers)
    assert again.status_code == 200 and again.json()["device_id"] == first.json()["device_id"]
