#!/usr/bin/env python3
"""The agent on a device, checked end to end through the server's admin API: the agent workflow's
emulator job runs it against the dockerised server and the debug APK on an Android 14 emulator;
tests/test_emulator_check.py runs it against a live test server and the headless agent.

1. Provisions the device with the server's own adb one-liner (GET /enrollment/provision.sh piped
   to bash, as `curl ... | bash` does): the APK given with --agent-apk installed, Device Owner,
   adb's grants, the CONFIGURE broadcast with the server and a new enrollment key; the script
   waits until the device is enrolled and online. Without --agent-apk the device must be
   enrolled already (--hardware-id, or adb's ro.serialno).
2. Sends one command of every type, with the releases it needs uploaded (scripts/publish_apk.py,
   an API key made for it and revoked after), and checks each result.
3. Creates a policy holding every item, assigns it to the device and checks each item's state,
   the compliance and the heartbeat's v1.1 fields.
4. With --target emulator, also asks the device itself over adb (settings, packages, Wi-Fi
   networks, uptime after the reboot); with --target headless those checks are listed as
   emulator-only and not run.

    scripts/emulator_check.py --server https://10.0.2.2 --ca-file ca.pem --username admin \\
        --password-env MDM_ADMIN_PASSWORD --agent-apk app-debug.apk --adb-serial emulator-5554

Exit 0 when every check passed, 1 when one failed, 2 on bad usage."""

import argparse
import functools
import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "apks"
FINAL = {"succeeded", "failed", "rejected", "expired", "cancelled"}
APP = "com.example.fieldapp"  # the fixture releases' package: v10 by command, v12 by the policy


class CheckError(Exception):
    """Something the checks cannot go on without (sign-in, the device never enrolled, ...)."""


class Report:
    """One line per check as it is decided; the summary's counts make the exit status."""

    def __init__(self, target: str):
        self.target, self.rows = target, []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append(("ok" if ok else "FAILED", name))
        print(f"{'ok' if ok else 'FAILED':<14}{name}{': ' + detail if detail else ''}", flush=True)
        return ok

    def on_device(self, name: str, check) -> None:
        """A check only a real device can answer (adb reads what Android did)."""
        if self.target != "emulator":
            self.rows.append(("emulator-only", name))
            print(f"{'emulator-only':<14}{name}: not run against the headless agent", flush=True)
            return
        try:
            self.check(name, *check())
        except (subprocess.SubprocessError, OSError) as exc:
            self.check(name, False, f"adb: {exc}")

    def failed(self) -> int:
        return sum(1 for outcome, _ in self.rows if outcome == "FAILED")

    def summary(self) -> str:
        counts = {k: sum(1 for outcome, _ in self.rows if outcome == k) for k in ("ok", "FAILED", "emulator-only")}
        return (f"emulator check ({self.target}): {counts['ok']} ok, {counts['FAILED']} failed, "
                f"{counts['emulator-only']} emulator-only")


class Admin:
    """The admin API with a JWT, signed in again when the access token has run out (15 min)."""

    def __init__(self, server: str, username: str, password: str):
        self.server, self.credentials = server.rstrip("/"), {"username": username, "password": password}
        self.http = httpx.Client(timeout=30)
        self._sign_in()

    def _sign_in(self) -> None:
        response = self.http.post(f"{self.server}/api/v1/auth/token", json=self.credentials)
        if response.status_code != 200:
            raise CheckError(f"sign-in refused: {response.status_code} {response.text[:200]}")
        self.http.headers["Authorization"] = f"Bearer {response.json()['access']}"

    def call(self, method: str, path: str, expect=(200,), **kwargs) -> dict:
        response = self.http.request(method, self.server + path, **kwargs)
        if response.status_code == 401:
            self._sign_in()
            response = self.http.request(method, self.server + path, **kwargs)
        if response.status_code not in expect:
            raise CheckError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def every(self, path: str, **params) -> list[dict]:
        """Every row of a paginated list."""
        rows, page = [], 1
        while True:
            body = self.call("GET", path, params={**params, "page": page})
            rows += body["results"]
            if not body.get("next"):
                return rows
            page += 1


class Adb:
    def __init__(self, serial: str):
        self.argv = ["adb", "-s", serial] if serial else ["adb"]

    def shell(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run([*self.argv, "shell", *args], capture_output=True, text=True, timeout=timeout)
        return (done.stdout + done.stderr).replace("\r", "").strip()

    def agent_log(self, lines: int = 60) -> str:
        done = subprocess.run([*self.argv, "logcat", "-d", "-s", "mdm-agent"], capture_output=True, text=True, timeout=60)
        return "\n".join((done.stdout + done.stderr).replace("\r", "").splitlines()[-lines:])

    def wake_and_unlock(self) -> None:
        """As a person picks the device up: screen on, the (insecure) keyguard away. The `lock`
        command and the reboot leave it locked; the kiosk's lock task is what is checked next."""
        self.shell("input", "keyevent", "KEYCODE_WAKEUP")
        self.shell("wm", "dismiss-keyguard")

    def wait_for_boot(self, timeout: float) -> None:
        subprocess.run([*self.argv, "wait-for-device"], timeout=timeout, check=True)
        deadline = time.monotonic() + timeout
        while self.shell("getprop", "sys.boot_completed") != "1" and time.monotonic() < deadline:
            time.sleep(2)


def poll(read, done, timeout: float, every: float = 1.0):
    """read() until done(value) or the time is up; the last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_file(path: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    """The agent APK on the loopback, where the one-liner's curl (on this machine) fetches it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(path.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{path.name}", server


def provision(api: Admin, args, report: Report) -> None:
    key = api.call("POST", "/api/v1/enrollment-keys", expect=(201,),
                   json={"name": f"emulator-check {args.run}", "expires_in_days": 1})["key"]
    apk_url, server = serve_file(args.agent_apk)
    try:
        script = httpx.get(f"{api.server}/enrollment/provision.sh", headers={"X-Admin-Key": key},
                           params={"apk_url": apk_url, "sha256": sha256(args.agent_apk)}, timeout=30)
        if script.status_code != 200:
            raise CheckError(f"provision.sh: {script.status_code} {script.text[:300]}")
        env = {**os.environ, "MDM_WAIT_S": str(args.enroll_wait_s)}
        done = subprocess.run(["bash", "-s", "--", *([args.adb_serial] if args.adb_serial else [])], input=script.text, env=env,
                              capture_output=True, text=True, timeout=args.enroll_wait_s + 600)
    finally:
        server.shutdown()
    print(done.stdout + done.stderr, end="", flush=True)
    if not report.check("the one-liner installed the agent, made it Device Owner, configured it and saw it enroll",
                        done.returncode == 0 and "is enrolled and online" in done.stdout, f"exit {done.returncode}"):
        raise CheckError("provisioning failed")


def find_device(api: Admin, hardware_id: str, timeout: float) -> dict:
    def online() -> dict | None:
        rows = [d for d in api.call("GET", "/api/v1/devices", params={"q": hardware_id})["results"] if d["hardware_id"] == hardware_id]
        return rows[0] if rows and rows[0]["status"].get("online") else None

    device = poll(online, bool, timeout, every=2)
    if device is None:
        raise CheckError(f"no online device with hardware_id {hardware_id!r} within {timeout:.0f}s")
    return device


def release_for(api: Admin, path: Path, key: str) -> dict:
    """The registry's release of this file: found by its SHA-256, else uploaded."""
    digest = sha256(path)
    found = [r for r in api.every("/api/v1/apks") if r["sha256"] == digest]
    if found:
        return found[0]
    sys.path.insert(0, str(ROOT / "scripts"))
    from publish_apk import publish  # tuspy, as the workflow's publishing step

    try:
        body = publish(server=api.server, api_key=key, path=path, notes="emulator check", timeout_s=120)
    except Exception as exc:  # tuspy's and requests' own errors: the upload did not happen
        raise CheckError(f"upload of {path.name}: {exc}") from exc
    if body["state"] != "done":
        raise CheckError(f"upload of {path.name} refused: {body}")
    return body["release"]


def commands_plan(wifi_ssid: str, v10: dict) -> list[tuple[str, dict, str]]:
    """(type, params, what the output must hold) in the order the device runs them (seq order);
    reboot last, so that nothing waits behind it."""
    return [
        ("ping", {}, ""),
        ("launch_app", {"package": "com.android.settings"}, ""),
        ("shell", {"argv": ["getprop", "ro.build.version.release"]}, "14"),
        ("lock", {}, ""),
        # The network the emulator is on already (open): enabling it keeps the device online.
        ("wifi_configure", {"ssid": wifi_ssid, "security": "open"}, ""),
        ("install_apk", {"apk_id": v10["id"]}, f"versionCode {v10['version_code']}"),
        ("clear_app_data", {"package": APP}, ""),
        ("uninstall_app", {"package": APP}, ""),
        ("reboot", {}, ""),
    ]


def check_commands(api: Admin, device: dict, plan, args, report: Report, adb: Adb) -> None:
    target = {"device_ids": [device["device_id"]]}
    if not any(r["argv_prefix"] == ["getprop"] and r["enabled"] for r in api.every("/api/v1/shell-allowlist")):
        api.call("POST", "/api/v1/shell-allowlist", expect=(201,),
                 json={"argv_prefix": ["getprop"], "description": "read-only: system properties"})
    issued_at = time.time()
    ids = [api.call("POST", "/api/v1/commands", expect=(201,), json={"type": t, "params": p, "target": target})["id"] for t, p, _ in plan]

    def deliveries() -> list[dict]:
        return [api.call("GET", f"/api/v1/commands/{i}")["deliveries"][0] for i in ids]

    final = poll(deliveries, lambda ds: all(d["state"] in FINAL for d in ds), args.command_wait_s, every=2)
    finished_at = time.time()
    for (type_, _, expected), d in zip(plan, final):
        output = (d.get("output") or "").strip()
        detail = d["state"] + (f" ({output[:120]})" if output else "") + (f" error: {d['error']}" if d.get("error") else "")
        report.check(f"command {type_}", d["state"] == "succeeded" and expected in output, detail)

    def rebooted():
        if final[-1]["state"] != "succeeded":
            return False, "the reboot command did not succeed"
        adb.wait_for_boot(args.command_wait_s)
        path = f"/api/v1/devices/{device['device_id']}"
        status = poll(lambda: api.call("GET", path)["status"], lambda s: (s.get("last_seen") or 0) > finished_at, 180, every=2)
        uptime, since = status.get("uptime_s"), time.time() - issued_at
        return uptime is not None and uptime < since, f"uptime {uptime}s in a heartbeat {since:.0f}s after the reboot was sent"

    report.on_device("the reboot restarted the device (its uptime began after the command)", rebooted)


def policy_items(args, wifi_id: str, v12: dict) -> dict:
    return {
        "kiosk": {"package": args.kiosk_package, "lock_task": True, "relaunch": True, "status_bar": False},
        "system_update": {"type": "windowed", "window_start_min": 120, "window_end_min": 240,
                          "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
        "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 600},
        "restrictions": ["no_factory_reset", "no_add_user"],
        "wifi": [{"id": wifi_id}],
        "shell_allowlist": [["getprop"], ["id"]],
        "apps": {"required": [v12["id"]], "blocked": ["com.android.chrome"]},
    }


def check_policy(api: Admin, device: dict, items: dict, v12: dict, args, report: Report, adb: Adb) -> None:
    created = api.call("POST", "/api/v1/policies", expect=(201,), json={"name": f"emulator-check {args.run}", "items": items})
    assigned = api.call("POST", f"/api/v1/policies/{created['id']}/assign", json={"target": {"device_ids": [device["device_id"]]}})
    report.check("the policy is assigned to the device", assigned.get("target_count") == 1, str(assigned))
    path = f"/api/v1/devices/{device['device_id']}"
    policy = poll(lambda: api.call("GET", path).get("policy") or {}, lambda p: p.get("applied_version") == created["version"],
                  args.policy_wait_s, every=2)
    report.check("the device applied the policy's version", policy.get("applied_version") == created["version"],
                 f"applied {policy.get('applied_version')}, current {created['version']}")
    states = policy.get("items") or {}
    for item in items:
        state = states.get(item) or {}
        reason = f": {state['reason']}" if state.get("reason") else ""
        report.check(f"policy item {item}", state.get("state") == "applied", f"{state.get('state')}{reason}")
    report.check("the device is compliant", policy.get("compliant") is True)
    status = poll(lambda: api.call("GET", path)["status"], lambda s: s.get("policy_version") == created["version"],
                  args.policy_wait_s, every=2)
    report.check("its heartbeat carries the policy version", status.get("policy_version") == created["version"],
                 str(status.get("policy_version")))
    report.check("its heartbeat says lock task (the kiosk) is active", status.get("lock_task_active") is True,
                 str(status.get("lock_task_active")))
    report.check("its heartbeat reports Android 14", str(status.get("os_version")) == "14", str(status.get("os_version")))
    report.on_device("its heartbeat says usage access is granted (by the one-liner's appops)",
                     lambda: (status.get("usage_access") is True, str(status.get("usage_access"))))
    report.on_device("the settings item reached Android (stay on while plugged, screen timeout)", lambda: (
        (got := (adb.shell("settings", "get", "global", "stay_on_while_plugged_in"),
                 adb.shell("settings", "get", "system", "screen_off_timeout"))) == ("7", "600000"), str(got)))
    version = v12["version_code"]
    apps = poll(lambda: {a["package"]: a["version_code"] for a in api.every(f"{path}/apps")}, lambda a: a.get(APP) == version,
                args.policy_wait_s, every=2)
    report.check(f"its inventory lists the required app {APP} at the policy's version", apps.get(APP) == version,
                 f"versionCode {apps.get(APP)}, wanted {version}")
    report.on_device(f"the required app {APP} is installed at the policy's version", lambda: (
        f"versionCode:{version}" in (out := adb.shell("pm", "list", "packages", "--show-versioncode", APP)), out))
    report.on_device("the policy's Wi-Fi network is configured", lambda: (
        f"mdm-policy-{args.run}" in (out := adb.shell("cmd", "wifi", "list-networks")), out[-300:]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the server's base URL (the admin API and the one-liner)")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-env", default="MDM_ADMIN_PASSWORD", help="the environment variable holding the password")
    parser.add_argument("--ca-file", help="a CA bundle to trust for the server (also for the upload client)")
    parser.add_argument("--target", choices=("emulator", "headless"), default="emulator")
    parser.add_argument("--agent-apk", type=Path, help="provision the device with this APK through the one-liner first")
    parser.add_argument("--adb-serial", default=os.environ.get("ANDROID_SERIAL", ""))
    parser.add_argument("--hardware-id", help="the device's hardware_id (default: adb's ro.serialno)")
    parser.add_argument("--kiosk-package", default="com.android.settings")
    parser.add_argument("--wifi-ssid", default="AndroidWifi", help="an open network the device may join (wifi_configure enables it)")
    parser.add_argument("--enroll-wait-s", type=int, default=300)
    parser.add_argument("--command-wait-s", type=int, default=600)
    parser.add_argument("--policy-wait-s", type=int, default=300)
    args = parser.parse_args(argv)
    password = os.environ.get(args.password_env, "")
    if not password or (args.agent_apk and not args.agent_apk.is_file()):
        print(f"needs the password in ${args.password_env}, and --agent-apk must be a file", file=sys.stderr)
        return 2
    if args.ca_file:
        os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = args.ca_file  # httpx, and requests under tuspy
    args.run = time.strftime("%m%d%H%M%S") + "-" + uuid.uuid4().hex[:4]
    report, adb = Report(args.target), Adb(args.adb_serial)
    key_id = None
    try:
        api = Admin(args.server, args.username, password)
        if args.agent_apk:
            provision(api, args, report)
        hardware_id = args.hardware_id or adb.shell("getprop", "ro.serialno")
        device = find_device(api, hardware_id, args.enroll_wait_s)
        report.check("the device is enrolled and online", True, f"{hardware_id} = {device['device_id']}")
        made = api.call("POST", "/api/v1/api-keys", expect=(201,),
                        json={"name": f"emulator-check {args.run}", "scopes": ["apk:upload", "apk:read"], "expires_in_days": 1})
        key_id = made["id"]
        v10, v12 = (release_for(api, FIXTURES / name, made["key"]) for name in ("app-v10.apk", "app-v12.apk"))
        check_commands(api, device, commands_plan(args.wifi_ssid, v10), args, report, adb)
        if args.target == "emulator":
            adb.wake_and_unlock()
        wifi = api.call("POST", "/api/v1/wifi-configs", expect=(201,), json={
            "name": f"emulator-check {args.run}", "ssid": f"mdm-policy-{args.run}", "security": "wpa2",
            "password": "check-only-passphrase"})
        check_policy(api, device, policy_items(args, wifi["id"], v12), v12, args, report, adb)
    except (CheckError, httpx.HTTPError, subprocess.SubprocessError, OSError) as exc:
        report.check("the checks ran to the end", False, str(exc))
    finally:
        if key_id:
            try:
                api.call("POST", f"/api/v1/api-keys/{key_id}/revoke")
            except (CheckError, httpx.HTTPError):
                pass
    if report.failed() and args.target == "emulator":
        try:
            print("The agent's last log lines:\n" + adb.agent_log())
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"(no logcat: {exc})")
    print(report.summary(), flush=True)
    return 1 if report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
