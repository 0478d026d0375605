"""The APK page in a real browser (Debian's Chromium): at 390 px wide nothing runs off the side,
the filters swap the list in place, and the list refreshes on the uploader's `apk-uploaded`."""

import pytest

from accounts.tests.factories import UserFactory
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def catalogue(transactional_db, copy_apk):
    from apks.services import releases

    admin = UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    uploader = releases.Uploader(actor=admin, user=admin, via="console", is_admin=True)
    return [releases.create_release(path=copy_apk(name), uploader=uploader, channel=channel, notes="Fixes " * 40)
            for name, channel in (("app-v10", "stable"), ("app-v11", "beta"), ("legacy-v1-only", "stable"))]


def sign_in(page, url):
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", "ada-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_the_apk_pages_fit_a_phone_and_the_list_follows_filters_and_uploads(live_server_proc, browser, catalogue, tmp_path):
    from apks.services import releases

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    url = live_server_proc.url
    sign_in(page, url)
    for path in ("/apks/", f"/apks/{catalogue[0].id}/", "/accounts/api-keys/"):
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (path, overflow)
        page.screenshot(path=str(tmp_path / f"390{path.replace('/', '_')}.png"), full_page=True)

    page.goto(url + "/apks/")
    page.select_option("#release-filters select[name=channel]", "beta")
    page.locator("#release-list >> text=com.example.legacy").wait_for(state="detached")
    assert page.locator("#release-list").inner_text().count("1.1") >= 1
    page.select_option("#release-filters select[name=channel]", "")
    page.locator("#release-list >> text=com.example.legacy").wait_for()
    # htmx wires the swapped list's own trigger (apk-uploaded) when it settles, 20 ms after the swap.
    page.wait_for_function("() => !document.querySelector('#release-list.htmx-added')")

    # What the uploader does when a release is made: the list comes back with it.
    uploader = releases.Uploader(actor="key:ci", user=None, via="ci")
    releases.create_release(path=_copy(tmp_path, "app-v12"), uploader=uploader)
    page.evaluate("document.dispatchEvent(new Event('apk-uploaded'))")
    page.locator("#release-list >> text=1.2").first.wait_for()
    context.close()


def _copy(tmp_path, name):
    import shutil

    from apks.tests.conftest import apk

    target = tmp_path / f"{name}-copy.apk"
    shutil.copyfile(apk(name), target)
    return target
