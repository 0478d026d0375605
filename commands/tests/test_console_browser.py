"""In a real browser (Debian's Chromium via Playwright) against a real daphne: an operator
composes a command, sees the dry-run count, confirms, and watches the live table turn green as
simulated devices report through the device API; a command with failures shows them in its bar,
loses its cancel button live, and its failed devices are retried after a dry-run count."""

import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.live import save_screenshot

from accounts.tests.factories import UserFactory
from commands import services
from commands.models import Command
from commands.tests.conftest import make_device
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def screenshot(page, tmp_path, name: str) -> None:
    save_screenshot(page, tmp_path, name)


def sign_in(page, url, username):
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_an_operator_composes_confirms_and_watches_the_live_table_turn_green(live_server_proc, page, tmp_path):
    url = live_server_proc.url
    UserFactory(username="olga-operator", role="operator", password=PASSWORD)
    devices = [make_device(group="lobby", model=f"Kiosk {i + 1}") for i in range(8)]
    make_device(group="office")
    sign_in(page, url, "olga-operator")

    page.click("nav[aria-label=Main] >> text=Commands")
    page.wait_for_url(url + "/commands/")
    page.click("text=New command")
    page.select_option("#type", "launch_app")
    page.wait_for_selector("input[name=package]")
    page.fill("input[name=package]", "com.example.kiosk")
    page.check("input[name=target_kind][value=group]")
    page.select_option("select[name=group]", "lobby")
    page.click("#preview-button")
    count = page.wait_for_selector("#dry-run-count")
    assert count.inner_text() == "8"
    assert Command.objects.count() == 0  # a dry run queues nothing
    screenshot(page, tmp_path, "command-composer.png")

    page.click("#confirm-button")
    page.wait_for_url(re.compile(r".*/commands/[0-9a-f-]{36}/$"))
    command = Command.objects.get()
    assert page.url.endswith(f"/commands/{command.pk}/")
    page.wait_for_selector("#live-indicator.on", timeout=10_000)  # the WebSocket joined
    assert page.locator("#deliveries tr.state-queued").count() == 8

    # The devices report through the device API of the same server; the page never reloads.
    succeeded = page.locator("#deliveries tr.state-succeeded")
    with httpx.Client(base_url=url, timeout=10) as http:
        for i, device in enumerate(devices):
            auth = {"Authorization": f"Device {device.token}"}
            for status in ("received", "running", "succeeded"):
                body = {"status": status, **({"exit_code": 0, "output": "launched"} if status == "succeeded" else {})}
                response = http.post(f"/api/v1/device/commands/{command.pk}/result", json=body, headers=auth)
                assert response.status_code == 200, response.text
            if i == 3:
                succeeded.nth(3).wait_for(timeout=10_000)  # at least 4
    # Locator waits, not wait_for_function: a predicate string is eval'd in the page, which the
    # Content-Security-Policy (script-src 'self', no 'unsafe-eval') refuses, as it should.
    succeeded.nth(7).wait_for(timeout=15_000)
    assert succeeded.count() == 8
    expect(page.locator("[data-counter=succeeded]")).to_have_text(re.compile(r"^\s*8\s*$"), timeout=10_000)
    assert page.locator("#command-progress rect[data-state=succeeded]").get_attribute("data-n") == "8"
    expect(page.locator("#command-status")).to_have_text("finished")
    time.sleep(0.3)
    screenshot(page, tmp_path, "command-live.png")


def test_a_viewer_sees_the_history_but_not_the_composer(live_server_proc, page):
    url = live_server_proc.url
    UserFactory(username="vic-viewer", role="viewer", password=PASSWORD)
    sign_in(page, url, "vic-viewer")
    page.goto(url + "/commands/")
    assert page.locator("text=New command").count() == 0
    response = page.goto(url + "/commands/new/")
    assert response.status == 403


def report(http, device, command, status: str) -> None:
    auth = {"Authorization": f"Device {device.token}"}
    for step in ("received", "running", status):
        body = {"status": step, **({"exit_code": 0 if status == "succeeded" else 1} if step == status else {})}
        response = http.post(f"/api/v1/device/commands/{command.pk}/result", json=body, headers=auth)
        assert response.status_code == 200, response.text


def test_failures_split_the_bar_live_and_an_operator_retries_the_failed_devices(live_server_proc, page, tmp_path):
    url = live_server_proc.url
    operator = UserFactory(username="rita-retry", role="operator", password=PASSWORD)
    devices = [make_device(group="tills", model=f"Till {i + 1}") for i in range(4)]
    command = services.issue_command(actor=operator, type="ping", params={}, target={"group": "tills"}).command
    sign_in(page, url, "rita-retry")
    page.goto(url + f"/commands/{command.pk}/")
    page.wait_for_selector("#live-indicator.on", timeout=10_000)
    expect(page.locator("#cancel-command")).to_be_visible()
    expect(page.locator("#retry-failed")).to_have_count(0)

    with httpx.Client(base_url=url, timeout=10) as http:
        for device, status in zip(devices, ("succeeded", "succeeded", "failed", "failed")):
            report(http, device, command, status)
    # Live, without a reload: the bar splits, the status says the failures, and the buttons
    # follow (no cancel once nothing is left to cancel; retry for the failed).
    expect(page.locator("#command-status")).to_have_text("finished with 2 failed", timeout=10_000)
    bar = page.locator("#command-progress rect")
    expect(bar).to_have_count(2)
    assert {bar.nth(i).get_attribute("data-state"): bar.nth(i).get_attribute("data-n") for i in range(2)} == {
        "succeeded": "2", "failed": "2"}
    expect(page.locator("#cancel-command")).to_have_count(0, timeout=10_000)
    expect(page.locator("#retry-failed")).to_be_visible()
    assert page.locator("#command-progress rect[data-state=failed]").evaluate("r => getComputedStyle(r).fill") == "rgb(239, 68, 68)"
    screenshot(page, tmp_path, "command-failed-split.png")

    page.click("#retry-failed")
    expect(page.locator("#retry-count")).to_have_text("2")
    assert Command.objects.count() == 1  # the count is a dry run
    page.click("#confirm-retry")
    page.wait_for_url(lambda u: re.search(r"/commands/[0-9a-f-]{36}/$", u) and str(command.pk) not in u)
    retry = Command.objects.get(retry_of=command)
    assert page.url.endswith(f"/commands/{retry.pk}/")
    expect(page.locator("#retry-of")).to_be_visible()
    expect(page.locator("#deliveries tr.state-queued")).to_have_count(2)
    expect(page.locator("#command-progress rect[data-state=pending]")).to_have_attribute("data-n", "2")
    assert {d.pk for d in retry.deliveries.all()} and set(retry.deliveries.values_list("device_id", flat=True)) == {
        devices[2].device.pk, devices[3].device.pk}
