"""In a real browser (Debian's Chromium via Playwright) against a real daphne: the dashboard of a
few devices takes live updates (devices coming online, an alert acknowledged elsewhere, another
period of the online chart) without a single browser error, htmx:oobErrorNoTarget included; and
an empty fleet's dashboard guides to the first enrollment and goes live when it happens."""

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from commands.tests.conftest import make_device
from commands.tests.test_console_browser import sign_in
from conftest import PASSWORD
from tests.live import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]

# Every htmx error event, whether or not htmx also logs it to the console.
WATCH = """
window.__htmxErrors = [];
for (const name of ["htmx:oobErrorNoTarget", "htmx:targetError", "htmx:swapError", "htmx:responseError", "htmx:sendError"]) {
  document.addEventListener(name, (e) => window.__htmxErrors.push(name + " " + (e.detail?.content?.id || e.detail?.target?.id || "")));
}
"""


class Errors:
    def __init__(self, page):
        self.page = page
        self.console = []
        page.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    def _console(self, message):
        # A browser may ask for /favicon.ico by itself (the console links its SVG icon): not this page's error.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.console.append(message.text)

    def all(self) -> list[str]:
        return self.console + self.page.evaluate("window.__htmxErrors")




def heartbeat(url, sim, **fields):
    answer = httpx.post(f"{url}/api/v1/device/heartbeat", json={"battery_pct": 55, **fields},
                        headers={"Authorization": f"Device {sim.token}"})
    assert answer.status_code == 200, answer.text


def a_day_of_samples(total: int) -> None:
    """What the offline sweep would have recorded over the last day: a fleet busy by day."""
    from devices import fleet_stats
    from devices.models import FleetSample

    now = fleet_stats.bucket_of(timezone.now())
    samples = {}
    for i in range(1, 288):
        at = now - i * fleet_stats.SAMPLE_EVERY
        online = total - (at.hour % 4 == 0) if 7 <= at.hour < 19 else max(total // 4, 1) + (at.hour % 3 == 0)
        samples[at] = FleetSample(at=at, total=total, online=online)
    FleetSample.objects.bulk_create(samples.values())


def test_live_updates_reach_the_dashboard_without_a_browser_error(live_server_proc, page, tmp_path):
    from mdm.alerts.models import Alert, AlertRule
    from mdm.tests.test_dashboard import command

    url = live_server_proc.url
    UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    devices = [make_device(group="lobby", model=f"Kiosk {i + 1}") for i in range(4)]
    a_day_of_samples(total=4)
    fleet = [d.device for d in devices]
    command(fleet, ["succeeded", "succeeded", "succeeded", "failed"], days_back=3)
    command(fleet, ["succeeded", "succeeded", "expired", "succeeded"], days_back=1)
    command(fleet[:3], ["succeeded", "succeeded", "queued"])
    from mdm.alerts import seeds

    seeds.seed(AlertRule)  # a transactional test may start from flushed tables
    AlertRule.objects.update(enabled=False)  # no evaluation beside the test's own alert (no worker runs here)
    now = timezone.now()
    Alert.objects.create(rule=AlertRule.objects.get(kind="battery_low"), subject_type="device",
                         subject_id=str(devices[3].id), subject_label="Kiosk 4", state="firing",
                         severity="warning", since=now, fired_at=now, value=7)
    errors = Errors(page)
    sign_in(page, url, "ada-admin")
    page.wait_for_selector("#live-indicator.on", timeout=10_000)
    online = page.locator("#fleet-summary .card.ok .n")
    expect(online).to_have_text("0")
    expect(page.locator("#alerts-live")).to_contain_text("Battery low")
    expect(page.locator(".alerts-count-card .alerts-open-count")).to_have_text("1")

    # Devices come online: the counts change in place, from the "dashboard" topic's message.
    reported = {"os_version": "14", "security_patch": f"{timezone.localdate():%Y-%m-01}", "agent_version": "1.4.0"}
    heartbeat(url, devices[0], **reported)
    expect(online).to_have_text("1", timeout=15_000)
    heartbeat(url, devices[1], **{**reported, "battery_pct": 12})
    heartbeat(url, devices[2], battery_pct=18, os_version="13", security_patch="2025-06-05", agent_version="1.3.2")
    expect(online).to_have_text("3", timeout=15_000)
    expect(page.locator("#fleet-summary .card.warn .n")).to_have_text("2")

    # Acknowledged in another tab: the open count and the list follow ("fleet" and "alerts" topics).
    other = page.context.new_page()
    other.goto(url + "/alerts/")
    acknowledge = other.get_by_role("button", name="Acknowledge Battery low: Kiosk 4")
    acknowledge.click()
    expect(acknowledge).to_have_count(0)  # its row answered (and then left the open tab, live)
    other.close()
    expect(page.locator("#alerts-live")).to_contain_text("Nothing open", timeout=15_000)
    expect(page.locator(".alerts-count-card .alerts-open-count")).to_have_text("")
    assert errors.all() == []

    page.reload()  # the spreads are read when the page loads
    expect(page.locator("#spread-os tbody tr").first).to_contain_text("14")
    page.wait_for_selector("#live-indicator.on", timeout=10_000)
    save_screenshot(page, tmp_path, "dashboard.png")
    page.click("#fleet-online >> text=7 days")
    expect(page.locator('#fleet-online a[aria-current="true"]')).to_have_text("7 days")
    expect(page.locator("#fleet-online figcaption")).to_contain_text("over the last 7 days: 3 of 4 now")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than a phone
    save_screenshot(page, tmp_path, "dashboard-phone.png")
    assert errors.all() == []


def test_an_empty_fleet_leads_to_the_first_enrollment(live_server_proc, page, tmp_path):
    from enrollment.services.keys import create_enrollment_key

    url = live_server_proc.url
    admin = UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    errors = Errors(page)
    sign_in(page, url, "ada-admin")
    guide = page.locator("#first-run")
    expect(guide).to_contain_text("Enroll your first device")
    expect(page.locator("#fleet-online")).to_have_count(0)
    page.wait_for_selector("#live-indicator.on", timeout=10_000)
    save_screenshot(page, tmp_path, "dashboard-first-run.png")

    # The first device enrolls and reports: the counts go live on the page the admin has open.
    key = create_enrollment_key(actor=admin, name="First").raw
    enrolled = httpx.post(f"{url}/api/v1/enroll", json={"hardware_id": "R52T-0001", "model": "Galaxy Tab A8"},
                          headers={"X-Admin-Key": key})
    assert enrolled.status_code == 201, enrolled.text
    assert httpx.post(f"{url}/api/v1/device/heartbeat", json={},
                      headers={"Authorization": f"Device {enrolled.json()['device_token']}"}).status_code == 200
    expect(page.locator("#fleet-summary .card .n").first).to_have_text("1", timeout=15_000)
    assert errors.all() == []

    guide.get_by_role("link", name="Build a QR code").click()
    page.wait_for_url(url + "/enrollment/#qr")
    expect(page.locator("#qr")).to_be_visible()
    assert errors.all() == []
