"""The Content-Security-Policy holds in a real browser (Debian's Chromium via Playwright, against
a real daphne): every console page, the API docs and the Django admin open, and the htmx swaps,
the WebSocket and the small scripts they use work, with no CSP violation (securitypolicyviolation
events and the console's "Refused to ..." errors) and no script error. The pages are found by
walking the project's routes, so a page added tomorrow is opened here too."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from commands import services as command_services
from commands.tests.conftest import make_device
from conftest import PASSWORD
from tests.urlwalk import all_routes

pytestmark = [pytest.mark.browser, pytest.mark.live]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
SAMPLE_UUID = str(uuid.UUID(int=1))
NOT_PAGES = ("/api/", "/static/", "/media/", "/metrics", "/healthz", "/readyz", "/admin/", "/enrollment/provision.",
             "/accounts/logout/", "/accounts/reset/")


class Watcher:
    def __init__(self, page):
        self.page = page
        self.console = []
        page.add_init_script(WATCH)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    def _console(self, message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.console.append(message.text)

    def problems(self) -> list[str]:
        events = self.page.evaluate("window.__csp || []")
        found, self.console = events + self.console, []
        self.page.evaluate("window.__csp = []")
        return found


def sign_in(page, url, username):
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def console_pages(page, url, ids: dict) -> list[str]:
    """Every GET route that answers a whole HTML page to an admin (sample ids replaced by real ones)."""
    pages = []
    for path, name in all_routes():
        if path.startswith(NOT_PAGES):
            continue
        if SAMPLE_UUID in path:
            key = next((k for k in ids if path.startswith(k)), None)
            if key is None:
                continue
            path = path.replace(SAMPLE_UUID, ids[key])
        response = page.request.get(url + path, max_redirects=0)
        if response.status == 200 and response.headers.get("content-type", "").startswith("text/html") and "<html" in response.text():
            pages.append(path)
    return pages


def test_every_console_page_runs_under_the_policy_without_a_violation(live_server_proc, page):
    url = live_server_proc.url
    UserFactory(username="ada-admin", role="admin", password=PASSWORD, is_staff=True, is_superuser=True)
    device = make_device(group="lobby", model="Kiosk 1").device
    from devices.models import DeviceStatus

    DeviceStatus.objects.filter(device=device).update(battery_pct=42)
    retired = make_device(group="lobby", model="Kiosk 2").device
    command = command_services.issue_command(actor=None, type="ping", params={}, target={"all": True}).command
    from devices import services as device_services

    device_services.delete_devices(actor=None, device_ids=[retired.pk])
    watcher = Watcher(page)
    sign_in(page, url, "ada-admin")

    pages = console_pages(page, url, {"/devices/": str(device.pk), "/commands/": str(command.pk)})
    expected = {"/", "/devices/", f"/devices/{device.pk}/", "/devices/retired/", "/devices/groups/", "/commands/",
                "/commands/new/", f"/commands/{command.pk}/", "/commands/presets/", "/commands/allowlist/", "/commands/wifi/",
                "/enrollment/", "/apks/", "/apks/rollouts/", "/audit/", "/accounts/users/", "/accounts/profile/", "/accounts/password/"}
    assert expected <= set(pages), expected - set(pages)
    for path in pages:
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        assert watcher.problems() == [], path

    # htmx swaps, the WebSocket and the static scripts, all under the policy.
    page.goto(url + "/")
    page.wait_for_selector("#live-indicator.on", timeout=10_000)  # connect-src allows the WebSocket
    page.click("#open-settings")
    page.locator("#settings-drawer input[name=heartbeat_interval_s]").fill("15")
    page.locator("#settings-drawer button[type=submit]").click()
    page.locator("#settings-drawer >> text=Saved.").wait_for()
    assert watcher.problems() == []

    page.goto(url + "/devices/")
    with page.expect_response(lambda r: "q=Kiosk" in r.url):  # htmx searches after a 300 ms pause
        page.fill("input[type=search]", "Kiosk")
    page.wait_for_load_state("networkidle")
    page.wait_for_selector("svg.fill rect", state="attached")  # the battery cell, drawn without a style attribute
    # The search's swap settles after its response (htmx's settle delay): a box checked before that
    # is replaced by the swapped rows, unchecked.
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
    page.check("#select-all")
    expect(page.locator("#bulk-delete")).to_be_enabled(timeout=15_000)  # static/js/devices.js ran (slow on a loaded machine)
    assert watcher.problems() == []

    page.goto(url + "/commands/new/")
    page.check("input[name=target_kind][value=group]")
    assert page.locator("select[name=group]").is_visible()  # static/js/composer.js ran
    page.check("input[name=target_kind][value=all]")
    page.click("#preview-button")
    page.wait_for_selector("#dry-run-count")
    assert watcher.problems() == []

    # The watcher does see a violation when there is one: an inline handler and a style attribute.
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<img src="/static/none.png" onerror="window.x = 1"><p style="color: red">x</p>')""")
    page.wait_for_timeout(500)
    seen = " ".join(watcher.problems())
    assert "script-src-attr" in seen and "style-src-attr" in seen
    assert page.evaluate("window.x") is None


def test_the_sign_in_pages_the_api_docs_and_the_admin_run_under_the_policy(live_server_proc, page):
    url = live_server_proc.url
    UserFactory(username="root-admin", role="admin", password=PASSWORD, is_staff=True, is_superuser=True)
    watcher = Watcher(page)
    for path in ("/accounts/login/", "/accounts/password-reset/", "/admin/login/"):
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        assert watcher.problems() == [], path

    sign_in(page, url, "root-admin")
    page.goto(url + "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)  # Swagger UI rendered the schema
    page.click(".opblock-tag >> nth=0")
    page.wait_for_load_state("networkidle")
    assert re.search(r"MDM API", page.inner_text(".swagger-ui .info .title"))
    assert watcher.problems() == [], "/api/docs/"

    for path in ("/admin/", "/admin/mdm/fleetsettings/", "/admin/devices/device/", "/admin/accounts/user/"):
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        assert watcher.problems() == [], path
    page.goto(url + "/admin/devices/devicegroup/add/")
    page.wait_for_load_state("networkidle")
    assert watcher.problems() == [], "admin add form"
