"""The headless agent against a live server's v1.1 policy channel (PROTOCOL.md): an admin creates a
policy and assigns it, the device fetches it at its next heartbeat, applies each item to the
simulated Device Owner state, reports per-item status, and its heartbeats carry the v1.1 fields."""

import time

import httpx
import pytest

from tests.test_agent_end_to_end import Agent, _delivery_state, _issue, agents, fleet_ready  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.slow]

ITEMS = {
    "kiosk": {"package": "com.example.kiosk", "lock_task": True, "relaunch": True, "status_bar": False},
    "settings": {"stay_on_while_plugged": True, "screen_off_timeout_s": 600},
    "restrictions": ["no_factory_reset", "no_debugging_features"],
    "system_update": {"type": "windowed", "window_start_min": 120, "window_end_min": 240,
                      "freeze_periods": [{"start": "12-01", "end": "12-31"}]},
}


def _create_policy(server, headers, items) -> dict:
    response = httpx.post(f"{server.url}/api/v1/policies", headers=headers, json={"name": "e2e-kiosk", "items": items})
    assert response.status_code == 201, response.text
    return response.json()


def _device_policy(server, headers, device_id, version, timeout: float = 30.0) -> dict:
    """The device's policy block once it reports on `version` (result writes may lag a flush)."""
    deadline = time.monotonic() + timeout
    while True:
        policy = httpx.get(f"{server.url}/api/v1/devices/{device_id}", headers=headers).json().get("policy") or {}
        if policy.get("applied_version") == version or time.monotonic() > deadline:
            return policy
        time.sleep(0.3)


def test_an_assigned_policy_is_applied_reported_and_shows_in_the_heartbeat(fleet_ready, agents, tmp_path):
    server, key, headers = fleet_ready
    agent = Agent(server.url, key, tmp_path / "state")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    agent.wait_for(lambda e: e["event"] == "heartbeat" and e.get("status") == 200)

    created = _create_policy(server, headers, ITEMS)
    response = httpx.post(f"{server.url}/api/v1/policies/{created['id']}/assign", headers=headers,
                          json={"target": {"device_ids": [device_id]}})
    assert response.status_code == 200, response.text
    assert response.json()["target_count"] == 1

    # The fetch at start got version 0 (no policy yet); the assignment's is the first one above it.
    fetched = agent.wait_for(lambda e: e["event"] == "policy_fetched" and e["changed"] and e["version"] > 0, timeout=30)
    version = fetched["version"]
    applied = agent.wait_for(lambda e: e["event"] == "policy_applied" and e["version"] == version)
    # The server may add items of its own (the console's shell allowlist): every one applies here.
    assert set(ITEMS) <= set(applied["items"])
    assert set(applied["items"].values()) == {"applied"}
    agent.wait_for(lambda e: e["event"] == "policy_status_posted" and e["version"] == version)

    policy = _device_policy(server, headers, device_id, version)
    assert policy["applied_version"] == version
    assert policy["compliant"] is True
    assert {s["state"] for s in policy["items"].values()} == {"applied"}
    assert set(ITEMS) <= set(policy["items"])

    # The heartbeat after the apply carries the version and the simulated Device Owner state.
    heartbeats_after = len([e for e in agent.events if e["event"] == "heartbeat"])
    agent.wait_for(lambda e: e["event"] == "heartbeat"
                   and len([x for x in agent.events if x["event"] == "heartbeat"]) > heartbeats_after + 1)
    status = httpx.get(f"{server.url}/api/v1/devices/{device_id}", headers=headers).json()["status"]
    assert status["policy_version"] == version
    assert status["lock_task_active"] is True
    assert status["os_version"] == "14"
    assert status["usage_access"] is False  # a Device Owner cannot grant itself the app-op

    # A shell command runs as the app's own user: reading a property works. The server's allowlist
    # rule is made here: the seeded one is gone once an earlier live test has flushed the database.
    from commands.models import ShellAllowRule
    from commands.services.shell_allowlist import create_allow_rule

    if not ShellAllowRule.objects.filter(argv_prefix=["getprop"], enabled=True).exists():
        create_allow_rule(actor=None, argv_prefix=["getprop"], description="read-only: system properties")
    command_id = _issue(server, headers, device_id, "shell", {"argv": ["getprop", "ro.build.version.release"]})
    assert _delivery_state(server, headers, command_id, until="succeeded", timeout=30) == "succeeded"
