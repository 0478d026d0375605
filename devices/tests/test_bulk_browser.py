"""In a real browser (Chromium, daphne, Redis channel layer): an operator ticks two devices in the
list, moves them to a group and tags them, and sees the list answer in place; a device's page
updates its memory and foreground app while heartbeats arrive, without a reload; a quick action
from that page lands in its command history."""

import re

import httpx
import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from commands.models import Command
from devices.models import Device, DeviceGroup
from devices.tests.factories import DeviceFactory, enroll_for_test

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def signed_in(page, server, client, user):
    client.force_login(user)
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                               "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value, "url": server.url}])


def test_an_operator_moves_and_tags_two_ticked_devices_and_the_list_shows_it(live_server_proc, page, client, operator_user):
    DeviceGroup.objects.create(name="lobby")
    first, second, third = (DeviceFactory(alias=f"kiosk-{n}") for n in (1, 2, 3))
    errors = []  # script errors (htmx's among them); a refused request's 422 is logged too, and expected
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    signed_in(page, live_server_proc, client, operator_user)
    page.goto(live_server_proc.url + "/devices/")

    move = page.locator("#bulk-form").get_by_role("button", name="Move", exact=True)
    expect(move).to_be_disabled()  # nothing ticked yet
    page.get_by_label("Select kiosk-1").check()
    page.get_by_label("Select kiosk-3").check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.select_option("#bulk-form select[name=group]", "lobby")
    move.click()

    expect(page.locator(".bulk-notice")).to_have_text("Moved 2 devices to lobby.")
    for device in (first, third):
        expect(page.locator(f"#device-{device.pk} .chip.group")).to_have_text("lobby")
    expect(page.locator(f"#device-{second.pk} .chip.group")).to_have_count(0)
    assert set(Device.objects.filter(group__name="lobby").values_list("alias", flat=True)) == {"kiosk-1", "kiosk-3"}

    # The two rows stay ticked after the move: tag them next.
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.fill("#bulk-form input[name=tag]", "rugged")
    page.locator("#bulk-form").get_by_role("button", name="Add tag").click()
    expect(page.locator(".bulk-notice")).to_have_text("Tagged 2 devices rugged.")
    for device in (first, third):
        expect(page.locator(f"#device-{device.pk} .chip:not(.group)")).to_have_text("rugged")
    assert set(Device.objects.filter(tags__name="rugged").values_list("alias", flat=True)) == {"kiosk-1", "kiosk-3"}

    # A refusal is said in the bar, and the selection stays.
    page.locator("#bulk-form").get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#bulk-message")).to_have_text("Choose a group to move the devices to.")
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    assert not errors, errors


def test_rows_ticked_right_after_a_search_stay_ticked(live_server_proc, page, client, operator_user):
    """Leaving the search box fires its `change`: it must not search again (the table re-rendered,
    the rows just ticked unticked). Only a filter's select re-filters on change."""
    for n in (1, 2):
        DeviceFactory(alias=f"kiosk-{n}")
    DeviceFactory(alias="till-1")
    signed_in(page, live_server_proc, client, operator_user)
    page.goto(live_server_proc.url + "/devices/")
    searches = []
    page.on("request", lambda r: searches.append(r.url) if "/devices/?" in r.url else None)
    with page.expect_response(lambda r: "q=kiosk" in r.url):  # the search, after its 300 ms pause
        page.fill("input[type=search]", "kiosk")
    expect(page.locator("#device-table tbody tr")).to_have_count(2)
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")
    page.check("#select-all")  # focus leaves the search box
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.wait_for_timeout(1000)  # a search the blur set off would have answered by now
    assert len(searches) == 1, searches
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    expect(page.locator("#bulk-form").get_by_role("button", name="Move", exact=True)).to_be_enabled()

    # A filter's select still filters at once.
    with page.expect_response(lambda r: "battery_below=20" in r.url):
        page.select_option("form.filters select[name=battery_below]", "20")
    assert len(searches) == 2


def test_send_command_opens_the_composer_on_the_ticked_hardware_ids(live_server_proc, page, client, operator_user):
    first, second = DeviceFactory(alias="till-1", hardware_id="TILL-0001"), DeviceFactory(alias="till-2", hardware_id="TILL-0002")
    signed_in(page, live_server_proc, client, operator_user)
    page.goto(live_server_proc.url + "/devices/")
    page.get_by_label("Select till-1").check()
    page.get_by_label("Select till-2").check()
    page.locator("#bulk-form").get_by_role("button", name="Send command…").click()
    page.wait_for_url(re.compile(r".*/commands/new/\?.*"))
    expect(page.locator("textarea[name=device_ids]")).to_have_value("TILL-0001\nTILL-0002")
    page.click("#preview-button")
    expect(page.locator("#dry-run-count")).to_have_text("2")
    page.click("#confirm-button")
    page.wait_for_url(re.compile(r".*/commands/[0-9a-f-]{36}/$"))
    assert Command.objects.get().target == {"device_ids": sorted([str(first.pk), str(second.pk)])}


def test_the_device_page_updates_live_and_its_quick_action_lands_in_its_history(live_server_proc, page, client, operator_user):
    enrolled = enroll_for_test(DeviceFactory(alias="kiosk-live"))
    device_id = enrolled.device.pk
    beat = {"battery_pct": 64, "charging": False, "mem_total_mb": 4000, "mem_avail_mb": 2500, "foreground_app": "com.example.home"}
    httpx.post(live_server_proc.url + "/api/v1/device/heartbeat", json=beat, headers=enrolled.headers).raise_for_status()

    signed_in(page, live_server_proc, client, operator_user)
    page.goto(f"{live_server_proc.url}/devices/{device_id}/")
    status = page.locator("#device-status")
    expect(status).to_contain_text("2500 MB free of 4000 MB")
    page.locator("#live-indicator.on").wait_for()  # the WebSocket is open
    page.evaluate("() => (window.__noReload = true)")

    # Same battery, same charging: nothing the list shows changed, yet the open page hears of it.
    beat.update(mem_avail_mb=900, foreground_app="com.example.pos")
    httpx.post(live_server_proc.url + "/api/v1/device/heartbeat", json=beat, headers=enrolled.headers).raise_for_status()
    expect(status).to_contain_text("900 MB free of 4000 MB", timeout=15_000)
    expect(status).to_contain_text("com.example.pos")
    assert page.evaluate("() => window.__noReload") is True

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#quick-reboot")
    expect(page.locator("#device-commands [role=status]")).to_contain_text("Reboot sent to kiosk-live.")
    expect(page.locator("#device-commands tbody tr")).to_have_count(1)
    expect(page.locator("#device-commands tbody tr .badge")).to_have_text("queued")
    command = Command.objects.get()
    assert command.type == "reboot" and command.target == {"device_ids": [str(device_id)]}
