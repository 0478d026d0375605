"""The agent updating itself through install_apk, end to end (issue 16): a live server holding two
real releases of the agent's package, the headless agent enrolled with v1 installed, an install_apk
of v2 issued over the admin API. The simulated Android kills the agent's process during the
install (as Android kills the app whose package it replaces); started again on the same state
directory, the agent reads the package manager and reports the delivery succeeded with v2's
version code. And the refusal Android gives a Device Owner: a downgrade fails with its reason."""

import time
from pathlib import Path

import httpx
import pytest

from tests.test_agent_end_to_end import Agent, _delivery_state, _issue

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "apks"
AGENT_PACKAGE = "dev.mdm.agent"  # the app's applicationId, the headless runner's default --own-package
KILLED_EXIT = 137  # the runner's exit status when the simulated Android kills it (128 + SIGKILL)
pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture
def agent_releases(settings, tmp_path, admin_user):
    """The two agent fixture APKs as releases, stored under this test's own directory (the
    server process below is pointed at the same one)."""
    from apks.parsing import parse_apk
    from apks.services.releases import Uploader, create_release

    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                         "OPTIONS": {"location": str(media)}}}
    v1, v2 = (parse_apk(FIXTURES / name) for name in ("agent-test.apk", "agent-test-v2.apk"))
    # What the test relies on, read from the APKs themselves rather than assumed.
    assert (v1.package, v2.package) == (AGENT_PACKAGE, AGENT_PACKAGE)
    assert v1.version_code < v2.version_code
    uploader = Uploader(actor=admin_user, user=admin_user, via="console", is_admin=True)
    releases = {info.version_code: create_release(path=FIXTURES / name, uploader=uploader)
                for info, name in ((v1, "agent-test.apk"), (v2, "agent-test-v2.apk"))}
    return releases[v1.version_code], releases[v2.version_code]


@pytest.fixture
def server(transactional_db, settings, tmp_path, agent_releases):
    """live_server_proc's server (conftest.py), with the release files where the test put them."""
    from tests.live import LiveServer, env_for_test_database

    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "true",
           "STORAGE_URL": f"file://{tmp_path / 'media'}", "APK_UPLOAD_DIR": str(tmp_path / "uploads")}
    live = LiveServer(env, log_path=tmp_path / "live-server.log")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def fleet(server, admin_user):
    """A short heartbeat interval, an enrollment key and an admin JWT, as the end-to-end tests set up."""
    from enrollment.services import create_enrollment_key
    from mdm.services import update_fleet_settings

    update_fleet_settings(actor=admin_user, heartbeat_interval_s=2)
    key = create_enrollment_key(actor=admin_user, name="self-update").raw
    jwt = httpx.post(f"{server.url}/api/v1/auth/token",
                     json={"username": admin_user.username, "password": "correct-horse-battery-staple"}).json()["access"]
    return server, key, {"Authorization": f"Bearer {jwt}"}


@pytest.fixture
def agents():
    started = []
    yield started
    for agent in started:
        agent.stop()


def _delivery(server, headers, command_id) -> dict:
    (delivery,) = httpx.get(f"{server.url}/api/v1/commands/{command_id}", headers=headers).json()["deliveries"]
    return delivery


def _exit_status(agent: Agent, timeout: float = 60.0) -> int:
    """The runner's exit status once it ends, after its reader thread has taken its last lines."""
    status = agent.proc.wait(timeout=timeout)
    deadline = time.monotonic() + 5
    while not any(e["event"] == "killed" for e in agent.events) and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


def _inventory_version(device_id: str, until: int, timeout: float = 20.0) -> int | None:
    """The agent package's version code in the device's inventory on the server, polled until it
    is `until` (the agent sends its inventory when the server asks, after a heartbeat)."""
    from devices.models import InstalledApp

    deadline = time.monotonic() + timeout
    while True:
        version = InstalledApp.objects.filter(device_id=device_id, package=AGENT_PACKAGE).values_list(
            "version_code", flat=True).first()
        if version == until or time.monotonic() > deadline:
            return version
        time.sleep(0.2)


def test_the_agent_updates_itself_is_killed_by_the_install_and_reports_success_after_the_restart(
        fleet, agent_releases, agents, tmp_path):
    server, key, headers = fleet
    v1, v2 = agent_releases
    state_dir = tmp_path / "state"
    installed_v1 = ("--installed", f"{AGENT_PACKAGE}={v1.version_code}")
    before = Agent(server.url, key, state_dir, *installed_v1)
    agents.append(before)
    device_id = before.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    assert _inventory_version(device_id, until=v1.version_code) == v1.version_code

    command_id = _issue(server, headers, device_id, "install_apk", {"apk_id": str(v2.id)})
    assert _exit_status(before) == KILLED_EXIT  # Android killed the process whose package it replaced
    (killed,) = [e for e in before.events if e["event"] == "killed"]
    assert (killed["package"], killed["version_code"]) == (AGENT_PACKAGE, v2.version_code)
    assert not [e for e in before.events if e["event"] == "result_posted"]
    # The agent said `running` (commands run off the heartbeat loop and report progress): not failed, not final.
    assert _delivery(server, headers, command_id)["state"] == "running"

    # Started again (SelfUpdateReceiver on Android) with the same state directory and arguments:
    # the seed does not undo the update, the package manager kept it.
    after = Agent(server.url, key, state_dir, *installed_v1)
    agents.append(after)
    reconciled = after.wait_for(lambda e: e["event"] == "reconciled" and e["id"] == command_id)
    assert reconciled["outcome"] == "succeeded"
    posted = after.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == command_id)
    assert posted["status"] == "succeeded"
    assert _delivery_state(server, headers, command_id, until="succeeded") == "succeeded"
    delivery = _delivery(server, headers, command_id)
    assert delivery["output"] == (f"installed {AGENT_PACKAGE} versionCode {v2.version_code} (package manager), "
                                  "confirmed after the agent restarted")
    assert not [e for e in after.events if e["event"] == "command_executed" and e["id"] == command_id]  # not run twice
    assert _inventory_version(device_id, until=v2.version_code) == v2.version_code  # the inventory says so too


def test_a_downgrade_of_the_agent_is_refused_as_android_refuses_it_and_the_agent_keeps_running(
        fleet, agent_releases, agents, tmp_path):
    server, key, headers = fleet
    v1, v2 = agent_releases
    agent = Agent(server.url, key, tmp_path / "state", "--installed", f"{AGENT_PACKAGE}={v2.version_code}")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)

    command_id = _issue(server, headers, device_id, "install_apk", {"apk_id": str(v1.id)})
    posted = agent.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == command_id)
    assert posted["status"] == "failed"
    assert _delivery_state(server, headers, command_id, until="failed") == "failed"
    delivery = _delivery(server, headers, command_id)
    assert delivery["error"].startswith(f"install {AGENT_PACKAGE} {v1.version_code} failed (status 4): "
                                        "INSTALL_FAILED_VERSION_DOWNGRADE")
    assert f"Update version code {v1.version_code} is older than current {v2.version_code}" in delivery["error"]
    assert agent.proc.poll() is None  # a refused install kills nothing
    assert _inventory_version(device_id, until=v2.version_code) == v2.version_code
