"""The QR builder in a real browser (Debian's Chromium) against a real daphne: an admin creates a
key, copies it and hands it to both forms, which say which policy its devices will get; a mistake
comes back in place; the QR code built from the agent release is drawn whole in its box, and a
screenshot of the code on screen decodes (zxing-cpp) to the payload, admin extras included, at
desktop and at phone width."""

import io
import json
import re
import shutil
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]

APKS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "apks"
EXTRA = "android.app.extra."


@pytest.fixture
def fleet(transactional_db, admin_user, settings, tmp_path):
    """A group with a policy, and the agent release marked in the registry (its file in this
    test's storage: the server never reads it, the checksums are the registry's)."""
    from apks.services import releases
    from commands.policies import services as policies
    from devices.models import DeviceGroup

    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(tmp_path / "media")}}}
    DeviceGroup.objects.create(name="shops")
    policy = policies.create_policy(actor=admin_user, name="Shop kiosk", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "shops"})
    copy = tmp_path / "agent-test.apk"
    shutil.copyfile(APKS / "agent-test.apk", copy)
    uploader = releases.Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)
    agent = releases.mark_agent_release(actor=admin_user, release=releases.create_release(path=copy, uploader=uploader))
    return {"policy": policy, "agent": agent}


def decode(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)]


def test_an_admin_builds_a_qr_code_that_scans_from_the_screen(live_server_proc, page, admin_user, fleet, tmp_path):
    url = live_server_proc.url
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + "/enrollment/")

    # A new key pinning the group: copied, then handed to both forms.
    page.fill("#key-form input[name=name]", "Shop rollout")
    page.select_option("#key-form select[name=group]", label="shops")
    page.click("#key-form button[type=submit]")
    raw = page.locator("#new-key").inner_text().strip()
    assert raw.startswith("mdmk_")
    assert "Shop kiosk" in page.locator("#new-key-info").inner_text()
    page.get_by_role("button", name="Copy").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    page.get_by_role("button", name="Use in the QR builder and the one-liner").click()
    page.locator("#key-form").screenshot(path=str(tmp_path / "key-created.png"), caret="initial")
    for form in ("qr", "oneliner"):
        page.locator(f"#{form}-key-info").get_by_text("Shop kiosk").wait_for()
        info = page.locator(f"#{form}-key-info").inner_text()
        assert "Shop rollout" in info and f"version {fleet['policy'].version}" in info and "assigned to the group shops" in info
    assert page.input_value("#qr-builder input[name=enroll_key]") == raw
    assert page.input_value("#oneliner input[name=enroll_key]") == raw

    # The agent release is filled in; a mistake comes back in place, the key still there.
    assert page.input_value("#qr-builder input[name=apk_url]") == f"{url}/apks/agent/{fleet['agent'].id}.apk"
    assert page.input_value("#qr-builder input[name=package_checksum]") != ""
    assert page.locator("#qr-builder input[name=kiosk_package]").get_attribute("list") == "kiosk-packages"
    page.fill("#qr-builder input[name=kiosk_package]", "not a package")
    page.click("#qr-builder button[type=submit]")
    page.locator("#qr-builder").get_by_text("A package name like com.example.kiosk.").wait_for()
    assert page.locator("#qr-builder").get_by_text("The QR code was not built").is_visible()
    assert page.input_value("#qr-builder input[name=enroll_key]") == raw
    assert "Shop kiosk" in page.locator("#qr-key-info").inner_text()

    page.fill("#qr-builder input[name=kiosk_package]", "com.example.kiosk")
    page.click("#qr-builder button[type=submit]")
    code = page.locator("#qr-code")
    code.wait_for()
    payload = json.loads(page.locator("#qr-payload").inner_text())
    extras = payload[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert extras == {"server_url": url, "enroll_key": raw, "kiosk_package": "com.example.kiosk"}

    # Drawn whole: the SVG fills its box, and what is on screen decodes to the payload.
    box = code.bounding_box()
    svg = code.locator("svg").bounding_box()
    assert 200 <= box["width"] <= 322 and abs(svg["width"] - svg["height"]) < 1 and svg["width"] >= box["width"] - 16
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 860})
        code.scroll_into_view_if_needed()
        # caret="initial": hiding the caret writes style="" on every input, which htmx's settling
        # would then copy onto the swapped-in fields (a CSP violation the page itself never makes).
        shot = code.screenshot(path=str(tmp_path / f"qr-{width}.png"), caret="initial")
        decoded = decode(shot)
        assert len(decoded) == 1, (width, decoded)
        assert json.loads(decoded[0]) == payload
        assert json.loads(decoded[0])[EXTRA + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"] == extras
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (width, overflow)
        page.screenshot(path=str(tmp_path / f"enrollment-{width}.png"), full_page=True, caret="initial")
    page.set_viewport_size({"width": 1366, "height": 860})

    # The one-liner: the agent release's SHA-256 filled in, the key handed over; a mistake in place.
    sha256 = page.input_value("#oneliner input[name=sha256]")
    assert sha256 == fleet["agent"].sha256
    page.fill("#oneliner input[name=sha256]", "not hex")
    page.click("#oneliner button[type=submit]")
    page.locator("#oneliner").get_by_text("64 hexadecimal digits").wait_for()
    page.fill("#oneliner input[name=sha256]", sha256)
    page.click("#oneliner button[type=submit]")
    page.locator("#bash-oneliner").wait_for()
    oneliner = page.locator("#bash-oneliner").inner_text()
    assert raw in oneliner and re.search(rf"sha256={fleet['agent'].sha256}", oneliner)
    assert errors == []


def test_the_keys_made_in_this_tab_are_offered_in_a_list_beside_each_key_field(live_server_proc, page, admin_user, fleet):
    # Keys are stored hashed (shown once): the list holds the keys this tab was shown, and picking
    # one fills the form's key field, which then says which key and policy it is.
    url = live_server_proc.url
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.goto(url + "/enrollment/")
    assert page.locator("#qr-builder .key-picker").is_hidden()  # nothing made in this tab yet
    made = {}
    for name, group in (("Shop rollout", "shops"), ("Depot spares", None)):
        page.fill("#key-form input[name=name]", name)
        if group:
            page.select_option("#key-form select[name=group]", label=group)
        page.click("#key-form button[type=submit]")
        page.locator("#key-form .secret-once", has_text=name).wait_for()
        made[name] = page.locator("#new-key").inner_text().strip()
    page.reload()  # the shown-once key is gone from the page; the tab still offers it
    assert page.locator("#new-key").count() == 0
    for form in ("qr-builder", "oneliner"):
        picker = page.locator(f"#{form} [data-key-picker]")
        assert picker.is_visible()
        assert picker.locator("option").all_inner_texts() == ["Choose a key…", "Depot spares", "Shop rollout"]
        picker.select_option(label="Shop rollout")
        assert page.input_value(f"#{form} input[name=enroll_key]") == made["Shop rollout"]
    page.locator("#qr-key-info").get_by_text("Shop kiosk").wait_for()  # the server knows the key picked
    assert errors == []
