"""Auto-remediation end to end: the Java agent core's headless runner against a live server
(tests/test_agent_end_to_end.py's harness). Its kiosk app is sent to the background, a rule about
that fires, the remediation relaunches the kiosk app through the real pull path, the agent
reports success, and the alert resolves by remediation.

The seeded `kiosk_not_in_front` rule watches it: the device's policy names the kiosk app."""

import time

import pytest
from django.utils import timezone

from commands.policies import services as policies
from devices.models import DeviceStatus
from mdm.alerts import services
from mdm.alerts.models import Alert, AlertRule, RemediationRun
from tests.test_agent_end_to_end import Agent, _issue, agents, fleet_ready  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.slow]
KIOSK = "com.example.kiosk"


def _until(predicate, what: str, timeout: float = 60.0):
    """Run evaluation cycles until the predicate holds (results and heartbeats reach PostgreSQL
    through the server's one-second flushes)."""
    deadline = time.monotonic() + timeout
    while True:
        services.run_cycle(timezone.now())
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.5)


def test_a_device_whose_kiosk_app_left_the_front_gets_it_relaunched(fleet_ready, agents, tmp_path, admin_user):  # noqa: F811
    server, key, headers = fleet_ready
    AlertRule.objects.update(enabled=False)
    rule = services.update_rule(actor=admin_user, rule=AlertRule.objects.get(seed_key="kiosk_not_in_front"), data={
        "enabled": True, "hold_s": 0, "clear_s": 0,
        "remediation": {"type": "launch_app", "params": {"package": KIOSK}, "max_fleet_pct": 100}})

    agent = Agent(server.url, key, tmp_path / "state")
    agents.append(agent)
    device_id = agent.wait_for(lambda e: e["event"] == "enrolled")["device_id"]
    # The device's policy names its kiosk (the kind compares it with the foreground app).
    policy = policies.create_policy(actor=admin_user, name="Kiosk", items={
        "kiosk": {"package": KIOSK, "lock_task": False, "relaunch": False}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [device_id]})
    away = _issue(server, headers, device_id, "launch_app", {"package": "com.android.settings"})
    agent.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == away)

    run = _until(lambda: RemediationRun.objects.filter(rule=rule, device_id=device_id).first(), "the remediation")
    assert run.state == "issued" and run.action == "launch_app"
    posted = agent.wait_for(lambda e: e["event"] == "result_posted" and e["id"] == str(run.command_id))
    assert posted["status"] == "succeeded"

    alert = _until(lambda: Alert.objects.filter(rule=rule, state="resolved").first(), "the resolve")
    run.refresh_from_db()
    assert run.state == "succeeded" and alert.resolved_by_remediation
    assert DeviceStatus.objects.get(device_id=device_id).foreground_app == KIOSK
    # the result and the resolve may land in either order (two flushes): both are on the timeline
    assert sorted(alert.events.values_list("kind", flat=True)) == [
        "fired", "remediation_issued", "remediation_succeeded", "resolved", "resolved_by_remediation"]
