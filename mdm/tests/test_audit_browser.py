"""In a real browser (Debian's Chromium) against a real daphne: an operator filters the audit log
by typing in the search box and picking an action prefix; htmx swaps the table in place (the form
and the page stay), the address follows the filters, and the export link downloads the filtered
CSV. At 390 px the page does not scroll sideways."""

import csv
import io

import pytest

from conftest import PASSWORD
from mdm.tests.audit_helpers import event

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_an_operator_filters_the_audit_log_in_place_and_exports_what_is_shown(live_server_proc, page, operator_user, admin_user):
    url = live_server_proc.url
    event(actor=admin_user, action="policy.create", target=("policy", "p-1"), data={"name": "Lobby kiosk"})
    event(actor=admin_user, action="policy.update", target=("policy", "p-1"), data={"name": {"from": "Lobby kiosk", "to": "Hall"}})
    event(actor="device:abc", action="device.enroll", target=("device", "abc"), data={"model": "Galaxy Tab A8"})

    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", operator_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.click("nav[aria-label=Main] >> text=Audit log")
    page.wait_for_url(url + "/audit/")
    actions = page.locator("#audit-table td.action")
    assert actions.count() == 3

    # The page is marked so a swap can be told from a reload.
    page.evaluate("document.body.dataset.loaded = 'once'")
    page.fill("input[name=q]", "galaxy")
    page.wait_for_function("() => document.querySelectorAll('#audit-table td.action').length === 1")
    assert actions.all_inner_texts() == ["device.enroll"]
    page.fill("input[name=q]", "")
    page.fill("input[name=action]", "policy.")
    page.press("input[name=action]", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#audit-table td.action').length === 2")
    assert actions.all_inner_texts() == ["policy.update", "policy.create"]
    assert page.evaluate("document.body.dataset.loaded") == "once"  # swapped, not reloaded
    assert "action=policy." in page.url
    assert "Lobby kiosk → Hall" in page.locator("#audit-table").inner_text()

    with page.expect_download() as download:
        page.click("#audit-table >> text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [r["action"] for r in rows] == ["policy.update", "policy.create"]

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(url + "/audit/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
