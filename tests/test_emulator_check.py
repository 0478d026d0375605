"""scripts/emulator_check.py, the check the agent workflow's emulator job runs, here against a live
server with the headless agent: behind the fake adb (tests/fixtures/fake-adb), the server's own
one-liner provisions it, then every command type and every policy item go through the admin API
and are checked, and the checks only a real device can answer are listed as emulator-only, never
passed. With --target emulator those checks run and judge what adb answers. A command the device
fails makes the script fail."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PASSWORD
from enrollment.tests.test_oneliner_fake_adb import device_dir  # noqa: F401 (fixture)
from tests.test_agent_end_to_end import Agent

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "emulator_check.py"
FAKE_ADB = ROOT / "tests" / "fixtures" / "fake-adb"
AGENT_APK = ROOT / "tests" / "fixtures" / "apks" / "agent-test.apk"
COMMAND_TYPES = ("ping", "launch_app", "shell", "lock", "wifi_configure", "install_apk", "clear_app_data", "uninstall_app", "reboot")
POLICY_ITEMS = ("kiosk", "system_update", "settings", "restrictions", "wifi", "shell_allowlist", "apps")


@pytest.fixture
def server(transactional_db, settings, tmp_path, admin_user):
    """A live server that keeps APK releases (tus uploads, downloads), heartbeats every 2 s."""
    from mdm.services import update_fleet_settings
    from tests.live import LiveServer, env_for_test_database

    update_fleet_settings(actor=admin_user, heartbeat_interval_s=2)
    env = {**env_for_test_database(settings), "CELERY_TASK_ALWAYS_EAGER": "true", "EMBEDDED_SCHEDULER": "true",
           "STORAGE_URL": f"file://{tmp_path / 'media'}", "APK_UPLOAD_DIR": str(tmp_path / "uploads")}
    live = LiveServer(env, log_path=tmp_path / "live-server.log")
    live.start()
    yield live
    live.stop()




def run_check(server, admin_user, *args: str, **env) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(SCRIPT), "--server", server.url, "--username", admin_user.username, "--target", "headless",
            "--enroll-wait-s", "90", "--command-wait-s", "90", "--policy-wait-s", "90", *args]
    environ = {**os.environ, "MDM_ADMIN_PASSWORD": PASSWORD, **env}
    return subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)


def outcomes(stdout: str) -> dict[str, str]:
    """{check name: ok | FAILED | emulator-only} from the script's lines."""
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"^(ok|FAILED|emulator-only) +(.+?)(?:: .*)?$", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def test_the_check_passes_against_the_headless_agent_the_one_liner_provisioned(server, admin_user, device_dir):
    from accounts.models import ApiKey
    from commands.models import Command, Delivery
    from devices.models import Device

    done = run_check(server, admin_user, "--agent-apk", str(AGENT_APK),
                     PATH=f"{FAKE_ADB}:{os.environ['PATH']}", FAKE_ADB_DIR=str(device_dir))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    seen = outcomes(done.stdout)
    assert seen["the one-liner installed the agent, made it Device Owner, configured it and saw it enroll"] == "ok"
    assert "Done: FAKE0001 is enrolled and online." in done.stdout  # the server's script itself said so
    assert {seen[f"command {t}"] for t in COMMAND_TYPES} == {"ok"}
    assert {seen[f"policy item {i}"] for i in POLICY_ITEMS} == {"ok"}
    assert seen["the device is compliant"] == seen["its heartbeat says lock task (the kiosk) is active"] == "ok"
    on_device = sorted(name for name, outcome in seen.items() if outcome == "emulator-only")
    assert len(on_device) == 5 and "the reboot restarted the device (its uptime began after the command)" in on_device
    assert "FAILED" not in seen.values()
    assert done.stdout.splitlines()[-1] == f"emulator check (headless): {len(seen) - 5} ok, 0 failed, 5 emulator-only"

    # What the server holds agrees: one command of each type, each delivered to the device and succeeded.
    device = Device.objects.get(hardware_id="FAKE0001")
    assert device.enrolled_with.startswith("emulator-check ")
    assert sorted(Command.objects.values_list("type", flat=True)) == sorted(COMMAND_TYPES)
    assert set(Delivery.objects.filter(device=device).values_list("state", flat=True)) == {"succeeded"}
    assert device.policy_state.compliant is True and set(device.policy_state.items) == set(POLICY_ITEMS)
    assert not ApiKey.objects.filter(revoked_at__isnull=True).exists()  # the upload key was revoked after


ANDROID_ANSWERS = {  # what a device answers adb after the policy applied (the values the policy sets)
    "getprop sys.boot_completed": "1",
    "input keyevent KEYCODE_WAKEUP": "",
    "wm dismiss-keyguard": "",
    "settings get global stay_on_while_plugged_in": "7",
    "settings get system screen_off_timeout": "600000",
    "pm list packages --show-versioncode com.example.fieldapp": "package:com.example.fieldapp versionCode:12",
    "cmd wifi list-networks": "Network Id      SSID                         Security type\n0            AndroidWifi                  open",
}


def test_with_target_emulator_the_device_side_checks_run_and_judge_what_adb_answers(server, admin_user, device_dir, tmp_path):
    """The fake device answers the settings and the package as Android would after the policy,
    and lacks what the headless agent cannot give (a reboot that resets the uptime, usage access,
    the policy's network): those three checks fail, the two others pass."""
    shim = tmp_path / "bin" / "adb"
    shim.parent.mkdir()
    shim.write_text(f"""#!{sys.executable}
import os, sys
answers = {ANDROID_ANSWERS!r}
args = sys.argv[1:]
shell = args[2:] if args[:1] == ["-s"] else args
if shell[:1] == ["shell"] and " ".join(shell[1:]) in answers:
    print(answers[" ".join(shell[1:])])
    sys.exit(0)
os.execv({str(FAKE_ADB / "adb")!r}, [{str(FAKE_ADB / "adb")!r}, *args])
""")
    shim.chmod(0o755)
    done = run_check(server, admin_user, "--agent-apk", str(AGENT_APK), "--target", "emulator",
                     PATH=f"{shim.parent}:{os.environ['PATH']}", FAKE_ADB_DIR=str(device_dir))
    assert done.returncode == 1, done.stdout[-4000:]
    seen = outcomes(done.stdout)
    assert {seen[f"command {t}"] for t in COMMAND_TYPES} == {"ok"} and {seen[f"policy item {i}"] for i in POLICY_ITEMS} == {"ok"}
    assert seen["the settings item reached Android (stay on while plugged, screen timeout)"] == "ok"
    assert seen["the required app com.example.fieldapp is installed at the policy's version"] == "ok"
    assert seen["the reboot restarted the device (its uptime began after the command)"] == "FAILED"  # the headless never rebooted
    assert seen["its heartbeat says usage access is granted (by the one-liner's appops)"] == "FAILED"
    assert seen["the policy's Wi-Fi network is configured"] == "FAILED"
    assert "emulator-only" not in seen.values()
    log = done.stdout.split("The agent's last log lines:\n", 1)[1]  # logcat, for whoever reads the job's log
    assert " I mdm-agent: " in log and '"event":"heartbeat"' in log.replace(" ", "")
    assert done.stdout.splitlines()[-1].endswith(", 3 failed, 0 emulator-only")


def test_a_command_the_device_fails_fails_the_check(server, admin_user, tmp_path):
    from enrollment.services import create_enrollment_key

    key = create_enrollment_key(actor=admin_user, name="failing").raw
    agent = Agent(server.url, key, tmp_path / "state", "--fail-type", "lock")
    try:
        agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)
        done = run_check(server, admin_user, "--hardware-id", "e2e-agent-1")
    finally:
        agent.stop()
    assert done.returncode == 1, done.stdout[-4000:]
    seen = outcomes(done.stdout)
    assert seen["command lock"] == "FAILED" and seen["command ping"] == "ok"
    assert "simulated failure of lock" in done.stdout
    assert ", 1 failed," in done.stdout.splitlines()[-1]


def test_without_a_password_it_stops_before_anything_is_sent(server, admin_user):
    done = run_check(server, admin_user, "--hardware-id", "nobody", MDM_ADMIN_PASSWORD="")
    assert done.returncode == 2 and "MDM_ADMIN_PASSWORD" in done.stderr
