"""The console's frame in a real browser (Debian's Chromium via Playwright, against a real daphne):
every console page, found by walking the project's routes with real ids in the detail pages, fits a
phone (390x844) and a desktop (1440x900) without a horizontal scroll of the document, and axe-core
(tests/axe, pinned; `make axe`) finds no serious or critical violation on it at either size. Then
the frame's own behaviours: the phone menu, the skip link, keyboard focus in the sidebar, and the
live indicator saying so when the WebSocket is down."""

import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from conftest import PASSWORD
from tests.live import save_screenshot
from tests.test_csp_browser import NOT_PAGES, sign_in
from tests.urlwalk import all_routes

pytestmark = [pytest.mark.browser, pytest.mark.live]

AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SAMPLE_UUID = str(uuid.UUID(int=1))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
# What axe reports, impact serious or critical only: rule, impact, and where (a few targets).
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}"""
OVERFLOW = """() => {
  const doc = document.documentElement, main = document.querySelector("main");
  const culprits = (limit) => [...document.body.querySelectorAll("main *")]
    .filter((el) => el.getBoundingClientRect().right > limit + 1)
    .filter((el) => el.parentElement.getBoundingClientRect().right <= limit + 1)
    .slice(0, 4)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : ""));
  if (doc.scrollWidth > window.innerWidth) return `document scrollWidth ${doc.scrollWidth} > ${window.innerWidth}: ${culprits(window.innerWidth)}`;
  // Nor does the content scroll sideways as a whole: only a table's (or a code block's) own box may.
  if (main.scrollWidth > main.clientWidth + 1) return `main scrollWidth ${main.scrollWidth} > ${main.clientWidth}: ${culprits(main.getBoundingClientRect().right)}`;
  return null;
}"""
# Words of text split over two lines (text breaking letter by letter in a squeezed column). Code,
# keys and payloads (code, pre, word-break: break-all) may break anywhere on purpose, and so may
# ids and hashes (letters among digits are no word).
BROKEN_WORDS = """() => {
  const found = [], walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
  while (walker.nextNode() && found.length < 5) {
    const node = walker.currentNode, el = node.parentElement;
    if (el.closest("code, pre, kbd, samp, textarea, script, style, [hidden]") || getComputedStyle(el).wordBreak === "break-all") continue;
    for (const match of node.data.matchAll(/(?<![A-Za-z0-9])[A-Za-z]{4,}(?![A-Za-z0-9])/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
      if (lines.size > 1) { found.push(`"${match[0]}" in ${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}`); break; }
    }
  }
  return found;
}"""


def _need_axe():
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make axe` (scripts/axe.sh)")


@pytest.fixture
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}


@pytest.fixture
def fleet(transactional_db, media_in_tmp, tmp_path):
    """One of everything a detail page shows, so every page has a real id and rows in its tables:
    {path prefix: id} for the walker."""
    from apks.services import deploy, releases
    from apks.tests.conftest import apk
    from commands import services as command_services
    from commands.policies import services as policies
    from commands.tests.conftest import make_device
    from devices import services as device_services
    from devices.models import DeviceStatus, InstalledApp
    from enrollment.services.keys import create_enrollment_key
    from mdm.alerts import services as alert_services
    from mdm.alerts.models import Alert, AlertRule
    from mdm.alerts.seeds import seed

    admin = UserFactory(username="ada-admin", role="admin", password=PASSWORD, is_staff=True, is_superuser=True)
    device = make_device(group="lobby", model="Kiosk 1", alias="front-desk-kiosk-with-a-long-name", sdk_int=34).device
    DeviceStatus.objects.filter(device=device).update(battery_pct=42, online=False,
                                                      last_seen=timezone.now() - timedelta(minutes=30))
    retired = make_device(group="lobby", model="Kiosk 2").device
    device_services.delete_devices(actor=None, device_ids=[retired.pk])
    command = command_services.issue_command(actor=admin, type="ping", params={}, target={"all": True}).command
    policy = policies.create_policy(actor=admin, name="Lobby kiosk", items={"kiosk": {"package": "com.example.kiosk"}})
    create_enrollment_key(actor=admin, name="Shop floor", max_uses=10)

    uploader = releases.Uploader(actor=admin, user=admin, via="console", is_admin=True)
    (tmp_path / "in").mkdir()
    copies = []
    for name in ("app-v10", "app-v11"):
        copies.append(tmp_path / "in" / f"{name}.apk")
        shutil.copyfile(apk(name), copies[-1])
    releases.create_release(path=copies[0], uploader=uploader)
    release = releases.create_release(path=copies[1], uploader=uploader)
    InstalledApp.objects.create(device=device, package=release.package, version_code=10)
    rollout = deploy.deploy_release(actor=admin, release=release, target={"all": True}, rollout={"waves": [50, 100]}).rollout

    seed(AlertRule)  # a live test earlier in the run flushed what the migrations seeded
    AlertRule.objects.exclude(kind="device_offline").update(enabled=False)
    alert_services.run_cycle()
    alert = Alert.objects.get()
    rule = AlertRule.objects.get(kind="device_offline")
    hook = alert_services.create_webhook(actor=admin, name="Ops chat", url="https://hooks.example.com/mdm", secret="s" * 32)
    return {
        "/devices/": str(device.pk),
        "/alerts/device/": str(device.pk),
        "/commands/": str(command.pk),
        "/commands/policies/": str(policy.pk),
        "/apks/": str(release.pk),
        "/apks/rollouts/": str(rollout.pk),
        "/alerts/": str(alert.pk),
        "/alerts/rules/": str(rule.pk),
        "/alerts/webhooks/": str(hook.pk),
    }


def console_pages(page, url, ids: dict) -> list[str]:
    """Every GET route answering a whole HTML page to an admin, sample ids replaced by real ones
    (the longest matching prefix names the object)."""
    pages = []
    for path, _ in all_routes():
        if path.startswith(NOT_PAGES):
            continue
        if SAMPLE_UUID in path:
            prefix = max((p for p in ids if path.startswith(p)), key=len, default=None)
            if prefix is None:
                continue
            path = path.replace(SAMPLE_UUID, ids[prefix])
        response = page.request.get(url + path, max_redirects=0)
        if response.status == 200 and response.headers.get("content-type", "").startswith("text/html") and "<html" in response.text():
            pages.append(path)
    return pages


def check_page(page, url, path) -> list[str]:
    page.goto(url + path)
    page.wait_for_load_state("networkidle")
    problems = []
    overflow = page.evaluate(OVERFLOW)
    if overflow:
        problems.append(f"overflow: {overflow}")
    problems += [f"word broken over lines: {w}" for w in page.evaluate(BROKEN_WORDS)]
    problems += page.evaluate(RUN_AXE)
    return problems


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_every_console_page_fits_the_screen_and_passes_axe(live_server_proc, browser, fleet, viewport, tmp_path):
    _need_axe()
    url = live_server_proc.url
    context = browser.new_context(viewport=viewport)
    context.add_init_script(path=str(AXE))  # injected by the browser, not a <script>: the CSP stays as it is
    page = context.new_page()
    sign_in(page, url, "ada-admin")
    pages = console_pages(page, url, fleet)
    expected = {"/", "/devices/", f"/devices/{fleet['/devices/']}/", "/devices/retired/", "/devices/groups/",
                "/commands/", "/commands/new/", f"/commands/{fleet['/commands/']}/", "/commands/presets/",
                "/commands/allowlist/", "/commands/wifi/", "/commands/policies/", "/commands/policies/new/",
                f"/commands/policies/{fleet['/commands/policies/']}/", "/enrollment/", "/enrollment/reenroll-requests/",
                "/apks/", f"/apks/{fleet['/apks/']}/", "/apks/rollouts/", f"/apks/rollouts/{fleet['/apks/rollouts/']}/",
                "/alerts/", f"/alerts/{fleet['/alerts/']}/", "/alerts/rules/", f"/alerts/rules/{fleet['/alerts/rules/']}/",
                "/alerts/webhooks/", f"/alerts/webhooks/{fleet['/alerts/webhooks/']}/", "/alerts/maintenance/",
                "/alerts/preferences/", "/audit/", "/ops/", "/accounts/users/", "/accounts/api-keys/",
                "/accounts/profile/", "/accounts/password/"}
    assert expected <= set(pages), expected - set(pages)
    found = {}
    for path in pages + ["/no-such-page/"]:
        problems = check_page(page, url, path)
        if problems:
            found[path] = problems
        page.screenshot(path=str(tmp_path / f"{viewport['width']}{path.replace('/', '_')}.png"), full_page=True)
    context.close()

    # Signed out: the sign-in, registration and password reset pages.
    context = browser.new_context(viewport=viewport)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    for path in ("/accounts/login/", "/accounts/register/", "/accounts/password-reset/"):
        problems = check_page(page, url, path)
        if problems:
            found[path] = problems
    context.close()
    assert found == {}, "\n".join(f"{path}: {p}" for path, problems in found.items() for p in problems)


def test_on_a_phone_the_sidebar_is_a_menu(live_server_proc, browser, fleet, tmp_path):
    url = live_server_proc.url
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page, url, "ada-admin")
    page.goto(url + "/devices/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#live-indicator.on")).to_be_visible()
    save_screenshot(page, tmp_path, "phone-devices.png", full_page=False)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    # The content has the whole width of the screen: no sidebar beside it.
    box = page.locator("main").bounding_box()
    assert box["x"] == 0 and box["width"] == PHONE["width"], box
    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    save_screenshot(page, tmp_path, "phone-menu.png", full_page=False)
    nav.get_by_role("link", name="Commands").click()
    page.wait_for_url(url + "/commands/")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    # Escape closes the menu and gives the focus back to its button.
    page.get_by_role("button", name="Menu").click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("button", name="Menu")).to_be_focused()
    context.close()


def test_on_a_phone_the_dry_run_preview_and_the_settings_drawer_fit_and_pass_axe(live_server_proc, browser, fleet):
    _need_axe()
    url = live_server_proc.url
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    sign_in(page, url, "ada-admin")
    page.goto(url + "/commands/new/")
    page.check("input[name=target_kind][value=all]")
    page.click("#preview-button")
    expect(page.locator("#dry-run-count")).to_have_text("1")
    page.locator("#confirm-button").scroll_into_view_if_needed()
    box = page.locator("#confirm-button").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate(OVERFLOW) is None
    assert page.evaluate(RUN_AXE) == []

    page.get_by_role("button", name="Menu").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    drawer = page.locator("#settings-drawer")
    expect(drawer.locator("input[name=heartbeat_interval_s]")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()  # the menu closed behind it
    box = drawer.locator("article").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate(RUN_AXE) == []
    context.close()


def test_the_keyboard_finds_a_skip_link_and_a_visible_focus_in_the_sidebar(live_server_proc, browser, fleet):
    url = live_server_proc.url
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, url, "ada-admin")
    page.goto(url + "/devices/")
    page.wait_for_load_state("networkidle")
    skip = page.get_by_role("link", name="Skip to content")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"

    page.goto(url + "/devices/")
    page.wait_for_load_state("networkidle")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")  # Dashboard
    focused = page.evaluate("""() => {
      const el = document.activeElement, style = getComputedStyle(el);
      return {text: el.textContent.trim(), outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
              inSidebar: !!el.closest(".sidebar")};
    }""")
    assert focused["inSidebar"] and focused["text"] == "Dashboard"
    assert focused["outline"] != "none" and focused["width"] >= 2, focused
    context.close()


def test_the_live_indicator_says_when_the_websocket_is_down(live_server_proc, browser, fleet):
    url = live_server_proc.url
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, url, "ada-admin")
    page.goto(url + "/devices/")
    indicator = page.locator("#live-indicator")
    expect(indicator).to_have_text("● Live", timeout=15_000)
    expect(indicator).to_have_attribute("title", "Live updates: connected")
    live_server_proc.stop()  # the server goes away, the socket with it
    expect(indicator).to_have_text("○ Disconnected", timeout=15_000)
    expect(indicator).to_have_attribute("title", "Live updates: disconnected, reconnecting")
    assert "off" in indicator.get_attribute("class")
    context.close()
