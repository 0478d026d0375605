"""The Java agent core's headless runner against a live server (daphne on the test database):
enroll, heartbeat, a command by the pull path, a tampered envelope, an envelope for another
device, and a 30-second server outage in the middle of a command."""

import json
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from commands.signing import make_envelope

ROOT = Path(__file__).resolve().parent.parent
CLASSPATH = f"{ROOT / 'android-agent/core/build/classes'}:/usr/share/java/com.android.json.jar"
pytestmark = [pytest.mark.live, pytest.mark.slow]


class Agent:
    """The headless runner as a child process; its JSON event lines are collected by a thread."""

    def __init__(self, server_url: str, key: str, state_dir: Path, *extra: str, duration_s: int = 240):
        argv = ["java", "-cp", CLASSPATH, "dev.mdm.agent.core.headless.Main", "--server", server_url, "--enroll-key", key,
                "--hardware-id", "e2e-agent-1", "--state-dir", str(state_dir), "--duration-s", str(duration_s),
                "--backoff-cap-s", "5", *extra]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.events: list[dict] = []
        self._new: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events.append(event)
            self._new.put(event)

    def wait_for(self, predicate, timeout: float = 60.0) -> dict:
        for event in self.events:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self._new.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"agent exited: {self.events[-5:]}"
                continue
            if predicate(event):
                return event
        raise AssertionError(f"no such event within {timeout}s; last: {self.events[-8:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def fleet_ready(live_server_proc, admin_user):
    """A live server with a short heartbeat interval, an enrollment key and an admin JWT."""
    from enrollment.services import create_enrollment_key
    from mdm.services import update_fleet_settings

    update_fleet_settings(actor=admin_user, heartbeat_interval_s=2)
    key = create_enrollment_key(actor=admin_user, name="e2e").raw
    jwt = httpx.post(f"{live_server_proc.url}/api/v1/auth/token",
                     json={"username": admin_user.username, "password": "correct-horse-battery-staple"}).json()["access"]
    return live_server_proc, key, {"Authorization": f"Bearer {jwt}"}


@pytest.fixture
def agents():
    started = []
    yield started
    for agent in started:
        agent.stop()


def _issue(server, headers, device_id, type_="ping", params=None) -> str:
    response = httpx.post(f"{server.url}/api/v1/commands", headers=headers,
                          json={"type": type_, "params": params or {}, "target": {"device_ids": [device_id]}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _delivery_state(server, headers, command_id, until: str | None = None, timeout: float = 10.0) -> str:
    """The delivery's state; with `until`, polled until it gets there (a result answered from
    Redis reaches PostgreSQL with the next one-second flush, commands.results)."""
    deadline = time.monotonic() + timeout
    while True:
        detail = httpx.get(f"{server.url}/api/v1/commands/{command_id}", headers=headers).json()
        (delivery,) = detail["deliveries"]
        if until is None or delivery["state"] == until or time.monotonic() > deadline:
            return delivery["state"]
        time.sleep(0.2)


def test_the_agent_enrolls_runs_a_pulled_command_and_the_server_records_success(fleet_ready, agents, tmp_path):
    server, key, headers = fleet_ready
    agent = Agent(server.url, key, tmp_path / "state")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)

    command_id = _issue(server, headers, device_id, "launch_app", {"package": "com.example.kiosk"})
    verified = agent.wait_for(lambda e: e["event"] == "command_verified" and e["id"] == command_id)
    assert verified["source"] in ("heartbeat", "pull")  # FCM is off: the pull path carried it
    posted = agent.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == command_id)
    assert posted["status"] == "succeeded"
    assert _delivery_state(server, headers, command_id, until="succeeded") == "succeeded"


def test_a_tampered_envelope_is_not_run_and_is_reported_in_bad_envelopes(fleet_ready, agents, tmp_path):
    server, key, headers = fleet_ready
    forged = make_envelope(
        payload={"id": str(uuid.uuid4()), "device_id": str(uuid.uuid4()), "seq": 1, "type": "reboot", "params": {},
                 "issued_at": int(time.time()), "expires_at": int(time.time()) + 600},
        kid="k1", key=b"not the device's key, not anybody's".ljust(32)[:32],
    )
    forged["payload"] = forged["payload"].replace("reboot", "reboow")  # and tampered after signing
    injected = tmp_path / "forged.json"
    injected.write_text(json.dumps(forged))
    agent = Agent(server.url, key, tmp_path / "state", "--inject-envelope-file", str(injected))
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    agent.wait_for(lambda e: e["event"] == "bad_envelope" and e["source"] == "inject")
    reported = agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("bad_envelopes", 0) >= 1)
    assert reported["status"] == 200
    assert not [e for e in agent.events if e["event"] in ("command_executed", "result_posted")]

    from devices.models import DeviceStatus

    deadline = time.monotonic() + 10
    while DeviceStatus.objects.get(device_id=device_id).bad_envelopes_total < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert DeviceStatus.objects.get(device_id=device_id).bad_envelopes_total >= 1


def test_an_envelope_signed_for_another_device_is_rejected_as_wrong_device(fleet_ready, agents, tmp_path):
    server, key, headers = fleet_ready
    state_dir = tmp_path / "state"
    first = Agent(server.url, key, state_dir)
    agents.append(first)
    first.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)
    first.stop()
    # Signed with this device's own current key (so it verifies) but addressed to another device.
    state = json.loads((state_dir / "state.json").read_text())
    current = state["command_keys"][0]
    import base64

    other = make_envelope(
        payload={"id": str(uuid.uuid4()), "device_id": str(uuid.uuid4()), "seq": 1, "type": "ping", "params": {},
                 "issued_at": int(time.time()), "expires_at": int(time.time()) + 600},
        kid=current["kid"], key=base64.b64decode(current["key"]),
    )
    injected = tmp_path / "other.json"
    injected.write_text(json.dumps(other))
    second = Agent(server.url, key, state_dir, "--inject-envelope-file", str(injected))
    agents.append(second)
    rejected = second.wait_for(lambda e: e["event"] == "rejected")
    assert rejected["reason"] == "wrong_device"
    assert rejected["id"] == json.loads(other["payload"])["id"]
    assert not [e for e in second.events if e["event"] == "command_executed"]


def test_the_agent_survives_a_30_second_outage_without_losing_a_result(fleet_ready, agents, tmp_path):
    server, key, headers = fleet_ready
    agent = Agent(server.url, key, tmp_path / "state", "--latency-ms", "3000")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    command_id = _issue(server, headers, device_id, "ping")
    agent.wait_for(lambda e: e["event"] == "command_verified" and e["id"] == command_id)

    server.stop()  # while the command runs: its result cannot be posted
    outage_started = time.monotonic()
    agent.wait_for(lambda e: e["event"] == "backoff", timeout=30)
    time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
    assert not [e for e in agent.events if e["event"] == "result_posted" and e["id"] == command_id]
    server.start()

    posted = agent.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == command_id, timeout=60)
    assert posted["status"] == "succeeded"
    assert _delivery_state(server, headers, command_id, until="succeeded") == "succeeded"
    assert agent.proc.poll() is None  # it kept running through the outage


def test_a_factory_reset_agent_waits_for_an_admin_and_re_enrolls_once_approved(fleet_ready, agents, tmp_path):
    """PROTOCOL.md v1.1: the same hardware id without a token is answered 409 with a request id;
    the agent repeats with it on its backoff until an admin approves it over the admin API."""
    server, key, headers = fleet_ready
    before = Agent(server.url, key, tmp_path / "before-reset")
    agents.append(before)
    device_id = before.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    before.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)  # its token is in use
    before.stop()

    after = Agent(server.url, key, tmp_path / "after-reset")  # same hardware id, empty state
    agents.append(after)
    request_id = after.wait_for(lambda e: e["event"] == "reenroll_pending")["reenroll_request"]
    (listed,) = httpx.get(f"{server.url}/api/v1/reenroll-requests", headers=headers).json()["results"]
    assert (listed["id"], listed["device_id"], listed["hardware_id"], listed["key_name"]) == (request_id, device_id, "e2e-agent-1", "e2e")
    repeat = after.wait_for(lambda e: e["event"] == "reenroll_pending" and not e["new"], timeout=30)
    assert repeat["reenroll_request"] == request_id  # repeated with the same id, on its backoff

    assert httpx.post(f"{server.url}/api/v1/reenroll-requests/{request_id}/approve", headers=headers).status_code == 200
    enrolled = after.wait_for(lambda e: e["event"] == "enrolled", timeout=30)
    assert (enrolled["device_id"], enrolled["status"], enrolled["reenroll_request"]) == (device_id, 200, request_id)
    after.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)
    attempts = [e for e in after.events if e["event"] == "reenroll_pending"]
    gaps = [b["ts"] - a["ts"] for a, b in zip(attempts, attempts[1:])]
    assert all(gap >= 4_000 for gap in gaps), gaps  # the refused floor (5 s with --backoff-cap-s 5): no tight loop
