"""`make run` on its own (no environment: the embedded default) serves the console; a real
browser signs in with the printed admin password and sees the shell and the settings drawer."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port, save_screenshot

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.browser, pytest.mark.live]

EMBEDDED_ENV_DROPS = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CACHE_PREFIX", "EMAIL_URL", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")


@pytest.fixture
def make_run(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_ENV_DROPS}
    env.update({"MDM_VAR_DIR": str(tmp_path / "var"), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
    log = tmp_path / "make-run.log"
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"], cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        password = re.search(r"password: (\S+)", log.read_text()).group(1)
        yield url, password, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_make_run_serves_the_login_page_on_sqlite_with_no_services(make_run):
    url, _, tmp_path = make_run
    response = httpx.get(url + "/", follow_redirects=True)
    assert response.status_code == 200
    assert "Sign in" in response.text
    assert (tmp_path / "var" / "mdm.sqlite3").exists()
    assert httpx.get(url + "/readyz").json()["checks"] == {"database": "ok", "redis": "not configured"}


def test_an_admin_signs_in_and_sees_the_shell_and_the_settings_drawer(make_run, page):
    url, password, tmp_path = make_run
    page.goto(url + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    assert page.locator("h1").inner_text() == "Dashboard"
    nav = page.locator("nav[aria-label=Main]").inner_text()
    for item in ("Dashboard", "Devices", "Commands", "APKs", "Enrollment", "Settings"):
        assert item in nav
    page.wait_for_selector("#live-indicator.on", timeout=10_000)  # the WebSocket joined

    page.click("#open-settings")
    drawer = page.locator("#settings-drawer")
    drawer.locator("input[name=heartbeat_interval_s]").wait_for()
    assert drawer.is_visible()
    drawer.locator("input[name=heartbeat_interval_s]").fill("15")
    drawer.locator("button[type=submit]").click()
    drawer.locator("text=Saved.").wait_for()
    save_screenshot(page, tmp_path, "console.png", full_page=False)
    assert drawer.locator("input[name=heartbeat_interval_s]").input_value() == "15"
