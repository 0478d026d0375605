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
        while not (found := re.search(r"password: (\S+)", log.read_text())):  # printed once the server answers
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, found.group(1), tmp_path
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


def test_a_device_gets_its_command_and_its_cancellation_on_sqlite(make_run):
    """The heartbeat's raw SQL (mdm.sql) reads the same on the embedded SQLite: UUIDs, JSON
    params and datetimes come back converted, envelopes verify, cancellations arrive once."""
    import base64

    from loadtest.simulator import verify_envelope

    url, password, _ = make_run
    api = httpx.Client(base_url=url, timeout=10)
    jwt = api.post("/api/v1/auth/token", json={"username": "admin", "password": password}).json()["access"]
    admin = {"Authorization": f"Bearer {jwt}"}
    raw_key = api.post("/api/v1/enrollment-keys", json={"name": "sqlite"}, headers=admin).json()["key"]
    enrolled = api.post("/api/v1/enroll", json={"hardware_id": "sqlite-1"}, headers={"X-Admin-Key": raw_key}).json()
    device = {"Authorization": f"Device {enrolled['device_token']}"}
    keys = {k["kid"]: base64.b64decode(k["key"]) for k in enrolled["command_keys"]}
    heartbeat = {"battery_pct": 50, "kids": sorted(keys)}

    first = api.post("/api/v1/commands", headers=admin, json={"type": "launch_app", "params": {"package": "com.example.a"}, "target": {"all": True}})
    second = api.post("/api/v1/commands", headers=admin, json={"type": "launch_app", "params": {"package": "com.example.b"}, "target": {"all": True}})
    assert first.status_code == second.status_code == 201, first.text
    answer = api.post("/api/v1/device/heartbeat", json=heartbeat, headers=device).json()
    payloads = [verify_envelope(e, keys, device_id=enrolled["device_id"], server_now=answer["server_time"]) for e in answer["commands"]]
    assert [(p["id"], p["params"]["package"]) for p in payloads] == [(first.json()["id"], "com.example.a"), (second.json()["id"], "com.example.b")]
    assert payloads[0]["expires_at"] > answer["server_time"] and payloads[0]["seq"] < payloads[1]["seq"]

    pulled = api.get("/api/v1/device/commands", params={"limit": 1}, headers=device).json()
    assert pulled["more"] is True and len(pulled["commands"]) == 1

    assert api.post(f"/api/v1/commands/{second.json()['id']}/cancel", headers=admin).status_code == 200
    answer = api.post("/api/v1/device/heartbeat", json=heartbeat, headers=device).json()
    assert answer["cancelled"] == [second.json()["id"]] and len(answer["commands"]) == 1
    assert api.post("/api/v1/device/heartbeat", json=heartbeat, headers=device).json()["cancelled"] == []


def test_the_last_lines_say_where_to_sign_in_and_an_idle_server_stays_quiet(make_run):
    url, password, tmp_path = make_run
    log = tmp_path / "make-run.log"
    deadline = time.monotonic() + 20  # the banner follows the server's first answer
    while "Serving " not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    lines = log.read_text().strip().splitlines()
    assert lines[-1] == f"Serving {url}/ (HTTP and WebSockets; Ctrl-C stops)"
    assert lines[-5:-1] == [f"Console: {url}/", "  username: admin", f"  password: {password}",
                            f"  (also saved in {tmp_path / 'var' / 'initial-admin.txt'}; change it under Profile)"]
    # Idle: the in-process scheduler runs its 1 s flushes, 5 s sweeps and 10 s live flush, silently.
    time.sleep(11)
    assert log.read_text().strip().splitlines() == lines
    # One line per request: the console's request log, not daphne's access log beside it.
    assert httpx.get(url + "/accounts/login/").status_code == 200
    time.sleep(1)  # the log's queue writes from a thread of its own
    new = log.read_text().strip().splitlines()[len(lines):]
    assert len(new) == 1 and '"path": "/accounts/login/"' in new[0], new
