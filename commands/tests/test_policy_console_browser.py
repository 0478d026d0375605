"""In a real browser (Debian's Chromium via Playwright) against a real daphne: an admin creates a
policy with a kiosk item, sees the error of a freeze period Android would refuse beside its row,
saves, assigns the policy to a group after its dry-run count, and sees the fleet's compliance
change on the devices list and the dashboard once a device reports that it applied it."""

import re

import pytest
from playwright.sync_api import expect

from accounts.tests.factories import UserFactory
from commands.policies import reports
from commands.policies import services as policies
from commands.policies.models import Policy, PolicyAssignment
from commands.tests.conftest import make_device
from commands.tests.test_console_browser import sign_in
from conftest import PASSWORD
from tests.live import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_an_admin_creates_fixes_saves_assigns_and_watches_compliance(live_server_proc, page, tmp_path):
    url = live_server_proc.url
    UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    lobby = [make_device(group="lobby", model=f"Kiosk {i + 1}") for i in range(3)]
    make_device(group="office")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "422" not in m.text else None)
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, url, "ada-admin")

    page.goto(url + "/commands/policies/")
    page.click("#new-policy")
    page.wait_for_url(url + "/commands/policies/new/")
    page.fill("input[name=name]", "Lobby kiosk")
    page.check("input[name=item][value=kiosk]")
    page.fill("input[name=kiosk_package]", "com.example.kiosk")
    page.check("input[name=item][value=system_update]")
    freeze = page.locator("#freeze-row-0")
    freeze.locator("input[name=freeze_start]").fill("06-01")
    freeze.locator("input[name=freeze_end]").fill("09-30")
    page.click("#save-policy")
    # The 422 answer is swapped in place: the error stands beside the row, what was typed stays.
    expect(page.locator("#freeze-row-0.invalid .freeze-error")).to_have_text(
        "06-01 to 09-30 is 122 days; a freeze period lasts at most 90 days.")
    assert page.url == url + "/commands/policies/new/" and not Policy.objects.exists()
    assert page.locator("input[name=kiosk_package]").input_value() == "com.example.kiosk"
    save_screenshot(page, tmp_path, "policy-editor-error.png")

    page.locator("#freeze-row-0 input[name=freeze_end]").fill("07-15")
    page.click("#save-policy")
    page.wait_for_url(re.compile(r".*/commands/policies/[0-9a-f-]{36}/$"))
    policy = Policy.objects.get()
    assert page.url == f"{url}/commands/policies/{policy.pk}/"
    expect(page.locator(".messages")).to_contain_text(f"Saved Lobby kiosk, version {policy.version}.")
    expect(page.locator(".messages")).to_contain_text("No device reports com.example.kiosk in its inventory")
    expect(page.locator("#show-system_update")).to_contain_text("Freeze 06-01 to 07-15 (45 days)")

    # Assign to the group: a dry run first, with its count, then the confirmation.
    page.check("#assign-form input[name=target_kind][value=group]")
    page.select_option("#assign-form select[name=group]", "lobby")
    page.click("#assign-preview-button")
    expect(page.locator("#assign-count")).to_have_text("3")
    assert not PolicyAssignment.objects.exists()
    page.click("#assign-button")
    expect(page.locator(".messages")).to_contain_text("assigned to group lobby: 3 devices selected, 3 changed")
    assert PolicyAssignment.objects.get().group.name == "lobby"
    expect(page.locator("#policy-assignments")).to_contain_text("lobby")
    save_screenshot(page, tmp_path, "policy-detail.png")

    page.goto(url + "/devices/")
    expect(page.locator("#non-compliant-count")).to_have_text("3")
    expect(page.locator("#compliant-count")).to_have_text("0")
    # A device reports (as PUT /api/v1/device/policy/status records it) that it applied every item.
    policies.record_policy_status(device_id=lobby[0].id, version=policy.version,
                                  items={"kiosk": {"state": "applied"}, "system_update": {"state": "applied"}})
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    page.reload()
    expect(page.locator("#compliant-count")).to_have_text("1")
    expect(page.locator("#non-compliant-count")).to_have_text("2")
    expect(page.locator(f"#dev-{lobby[0].id}-compliance")).to_contain_text("compliant")
    save_screenshot(page, tmp_path, "devices-compliance.png")
    page.goto(url + "/")
    expect(page.locator("#fleet-compliance #compliant-count")).to_have_text("1")
    expect(page.locator("#fleet-compliance #non-compliant-count")).to_have_text("2")
    assert not [e for e in errors if "Content Security Policy" in e], errors
