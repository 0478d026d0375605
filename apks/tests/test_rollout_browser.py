"""Deploying in waves from a release's page in a real browser (Debian's Chromium): preview, the
confirm, the rollout page, and a change made elsewhere (a pause) arriving over the WebSocket."""

import httpx
import pytest

from accounts.tests.factories import UserFactory
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture
def fleet_on_v10(transactional_db, copy_apk):
    from apks.services import releases
    from devices.models import InstalledApp
    from devices.tests.factories import DeviceFactory

    admin = UserFactory(username="ada-admin", role="admin", password=PASSWORD)
    uploader = releases.Uploader(actor=admin, user=admin, via="console", is_admin=True)
    releases.create_release(path=copy_apk("app-v10"), uploader=uploader)
    v11 = releases.create_release(path=copy_apk("app-v11"), uploader=uploader)
    for _ in range(4):
        InstalledApp.objects.create(device=DeviceFactory(), package=v11.package, version_code=10)
    return admin, v11


def test_an_admin_deploys_in_waves_and_watches_the_rollout_live(live_server_proc, browser, fleet_on_v10):
    from apks.models import Rollout

    _, v11 = fleet_on_v10
    url = live_server_proc.url
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", "ada-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.goto(f"{url}/apks/{v11.id}/")
    page.check("input[name=staged]")
    page.fill("input[name=waves]", "50, 100")
    page.fill("input[name=soak_min]", "60")
    page.click("#deploy-preview-button")
    page.locator("#deploy-count").wait_for()
    assert page.inner_text("#deploy-count") == "4" and "50%: 2 devices" in page.inner_text("#deploy-preview")
    assert not Rollout.objects.exists()
    page.click("#deploy-button")
    page.wait_for_url(f"{url}/apks/rollouts/**")
    rollout = Rollout.objects.get()
    assert page.inner_text("#rollout-state") == "Running" and "soaking until" in page.inner_text(f"#rollout-{rollout.id}")
    page.locator("#live-indicator.on").wait_for()  # the WebSocket is open
    # Elsewhere (the API, another admin's session): a pause.
    jwt = httpx.post(f"{url}/api/v1/auth/token", json={"username": "ada-admin", "password": PASSWORD}).json()["access"]
    httpx.post(f"{url}/api/v1/rollouts/{rollout.id}/pause", headers={"Authorization": f"Bearer {jwt}"}).raise_for_status()
    page.locator("#rollout-state", has_text="Paused").wait_for(timeout=15000)
    assert "Paused by user:ada-admin" in page.inner_text(f"#rollout-{rollout.id}")
    assert not [e for e in errors if "Content Security Policy" in e], errors
