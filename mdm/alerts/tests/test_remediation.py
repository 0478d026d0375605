"""Auto-remediation with frozen time (docs/alerts.md "Auto-remediation"): one command to the devices
whose alerts fired, the guardrails (per device per hour, fleet share, cool-down, dry run, the stop
of its own), results followed from the deliveries, escalation by e-mail even for a quiet rule,
and alerts resolved by remediation."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from commands import services as commands
from commands.models import Command, Delivery, Preset
from commands.params import ParamsError
from devices.models import DeviceStatus
from devices.tests.factories import DeviceFactory, DeviceGroupFactory
from mdm.alerts import services, tasks
from mdm.alerts.models import Alert, AlertEvent, AlertRule, Notification, RemediationRun
from mdm.alerts.remediation import runs
from mdm.models import AuditEvent

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KIOSK = {"type": "launch_app", "params": {"package": "com.example.kiosk"}}


@pytest.fixture(autouse=True)
def _no_flapping(settings):
    settings.ALERT_FLAP_FIRES = 1000  # these tests fire one device again and again on purpose


def battery_rule(admin_user, remediation=None, **fields) -> AlertRule:
    """The seeded battery-low rule alone, firing and resolving at once, with this remediation."""
    AlertRule.objects.exclude(kind="battery_low").update(enabled=False)
    rule = AlertRule.objects.get(seed_key="battery_low")
    return services.update_rule(actor=admin_user, rule=rule, data={
        "hold_s": 0, "clear_s": 0, "remediation": {**KIOSK, "max_fleet_pct": 100, **(remediation or {})}, **fields})


def battery(devices, pct):
    DeviceStatus.objects.filter(device__in=devices).update(online=True, last_seen=T0, battery_pct=pct, charging=False)


def cycle(at):
    with time_machine.travel(at, tick=False):
        return services.run_cycle(timezone.now())


def states(**filters):
    return sorted(RemediationRun.objects.filter(**filters).values_list("state", flat=True))


def report(run_or_device, status, at, **fields):
    run = run_or_device if isinstance(run_or_device, RemediationRun) else RemediationRun.objects.get(
        device_id=run_or_device.pk, state="issued")
    commands.record_result(device_id=run.device_id, command_id=run.command_id, status=status, now=at, **fields)


# --- what a rule may run -------------------------------------------------------------------------


def test_a_remediation_is_normalised_with_its_guardrail_defaults(admin_user):
    rule = battery_rule(admin_user, {"max_fleet_pct": 20})
    assert rule.remediation == {"type": "launch_app", "params": {"package": "com.example.kiosk"}, "max_per_device_per_hour": 3,
                                "cooldown_s": 600, "max_fleet_pct": 20, "fleet_window_s": 900, "stop_failure_pct": 50,
                                "stop_last_runs": 10, "expires_in_s": 3600}


@pytest.mark.parametrize("remediation, field, words", [
    ({"type": "shell", "params": {"argv": ["reboot"]}}, "remediation.type", "is not run unattended"),
    ({"type": "format_disk"}, "remediation.type", "Unknown remediation 'format_disk'"),
    ({"type": ["reboot"]}, "remediation.type", "Unknown remediation"),
    ({"type": "launch_app", "params": {}}, "remediation.params.package", "A package name like com.example.app"),
    ({"type": "wifi_configure", "params": {"ssid": "Shop", "password": "hunter2hunter2"}}, "remediation.params.wifi_config",
     "a rule never holds a password"),
    ({"type": "install_apk", "params": {"apk_id": "not-a-release"}}, "remediation.params.apk_id", "uploaded APK release"),
    ({"type": "reboot", "cooldown_s": -1}, "remediation.cooldown_s", "Cool-down between two runs"),
    ({"type": "reboot", "max_fleet_pct": True}, "remediation.max_fleet_pct", "in percent: from 1 to 100"),
    ({"type": "reboot", "preset": "Reboot"}, "remediation", "not both"),
    ({"preset": "No such preset"}, "remediation.preset", "No preset 'No such preset'"),
    ("reboot", "remediation", "An object"),
    ({"type": "reboot", "retries": 3}, "remediation", "Unknown: retries"),
])
def test_a_remediation_that_is_not_allowed_is_refused_in_the_users_terms(admin_user, remediation, field, words):
    rule = AlertRule.objects.get(seed_key="battery_low")
    with pytest.raises(ParamsError) as caught:
        services.update_rule(actor=admin_user, rule=rule, data={"remediation": remediation})
    assert words in caught.value.errors[field][0]


def test_a_preset_is_named_runs_its_latest_version_and_one_of_a_harmful_type_is_refused(admin_user):
    first = commands.create_preset(actor=admin_user, name="Relaunch kiosk", type="launch_app", params={"package": "com.example.old"})
    latest = commands.update_preset(actor=admin_user, preset=first, params={"package": "com.example.kiosk"})
    wipe = commands.create_preset(actor=admin_user, name="Wipe kiosk", type="clear_app_data", params={"package": "com.example.kiosk"})
    with pytest.raises(ParamsError) as caught:
        battery_rule(admin_user, {"type": None, "params": None, "preset": str(wipe.pk)})
    assert "runs clear_app_data" in caught.value.errors["remediation.preset"][0]
    rule = battery_rule(admin_user, {"type": None, "params": None, "preset": "Relaunch kiosk"})
    assert rule.remediation["preset"] == "Relaunch kiosk" and "preset_version" not in rule.remediation
    d = DeviceFactory()
    battery([d], 5)
    cycle(T0)
    command = Command.objects.get()
    assert (command.preset, command.params) == (latest, {"package": "com.example.kiosk"})
    assert RemediationRun.objects.get().action == "launch_app"


def test_a_saved_wifi_network_is_pushed_again_and_the_rule_never_holds_its_password(admin_user):
    config = commands.create_wifi_config(actor=admin_user, name="Shop floor", ssid="shop", password="correct-pass-1")
    rule = battery_rule(admin_user, {"type": "wifi_configure", "params": {"wifi_config": "Shop floor"}})
    assert rule.remediation["params"] == {"wifi_config": str(config.pk)}
    d = DeviceFactory()
    battery([d], 5)
    cycle(T0)
    command = Command.objects.get()
    assert (command.type, command.wifi_config, command.is_secret) == ("wifi_configure", config, True)
    assert command.full_params()["password"] == "correct-pass-1" and "password" not in command.params


# --- on fire -------------------------------------------------------------------------------------


def test_the_devices_that_fired_get_one_command_once(admin_user):
    rule = battery_rule(admin_user)
    low, fine = [DeviceFactory() for _ in range(3)], DeviceFactory()
    battery(low, 5)
    battery([fine], 80)
    cycle(T0)
    command = Command.objects.get()
    assert command.type == "launch_app" and command.params == {"package": "com.example.kiosk"}
    assert command.issuer is None and command.issuer_label == f"alert-rule:{rule.name}"
    assert set(Delivery.objects.values_list("device_id", flat=True)) == {d.pk for d in low}
    assert command.expires_at == T0 + timedelta(hours=1)
    assert states(rule=rule) == ["issued"] * 3
    assert set(RemediationRun.objects.values_list("command_id", flat=True)) == {command.pk}
    assert AlertEvent.objects.filter(kind="remediation_issued").count() == 3
    assert AuditEvent.objects.filter(action="alert_rule.remediate").count() == 1
    for s in (30, 60, 90):  # still firing: nothing more
        cycle(T0 + timedelta(seconds=s))
    assert Command.objects.count() == 1


def test_at_most_n_runs_per_device_per_hour(admin_user):
    rule = battery_rule(admin_user, {"max_per_device_per_hour": 2, "cooldown_s": 0})
    d = DeviceFactory()
    for minute in range(0, 6, 2):  # fires at 0, 2 and 4 min (resolving in between)
        battery([d], 5)
        cycle(T0 + timedelta(minutes=minute))
        battery([d], 80)
        cycle(T0 + timedelta(minutes=minute + 1))
    assert states(rule=rule) == ["issued", "issued", "skipped"]
    assert RemediationRun.objects.get(state="skipped").reason == "at most 2 runs per device per hour"
    battery([d], 5)
    cycle(T0 + timedelta(minutes=61))  # the first run is over an hour old
    assert states(rule=rule, at=T0 + timedelta(minutes=61)) == ["issued"]
    assert Command.objects.count() == 3


def test_the_cool_down_holds_a_device_back(admin_user):
    rule = battery_rule(admin_user, {"cooldown_s": 600})
    d = DeviceFactory()
    for minute in (0, 5, 11):
        battery([d], 5)
        cycle(T0 + timedelta(minutes=minute))
        battery([d], 80)
        cycle(T0 + timedelta(minutes=minute, seconds=30))
    assert list(RemediationRun.objects.filter(rule=rule).order_by("at").values_list("state", flat=True)) == [
        "issued", "skipped", "issued"]
    assert RemediationRun.objects.get(state="skipped").reason == "cool-down: remediated 5 min ago (cool-down 10 min)"


def test_at_most_a_share_of_the_rules_scope_per_window(admin_user):
    lobby = DeviceGroupFactory(name="Lobby")
    devices = [DeviceFactory(group=lobby) for _ in range(30)]
    DeviceFactory.create_batch(20)  # outside the scope: not counted in the share
    rule = battery_rule(admin_user, {"max_fleet_pct": 10}, scope={"group": "Lobby"})
    battery(devices[:5], 5)
    cycle(T0)
    assert states(rule=rule) == ["issued"] * 3 + ["skipped"] * 2
    skipped = RemediationRun.objects.filter(state="skipped").first()
    assert skipped.reason == "fleet share: at most 10% of the 30 devices in scope (3) per 15 min"
    assert Delivery.objects.count() == 3
    battery(devices[5:6], 5)
    cycle(T0 + timedelta(minutes=14))
    assert states(rule=rule, at=T0 + timedelta(minutes=14)) == ["skipped"]
    battery(devices[6:7], 5)
    cycle(T0 + timedelta(minutes=15, seconds=1))  # a new window
    assert states(rule=rule, at=T0 + timedelta(minutes=15, seconds=1)) == ["issued"]


def test_a_dry_run_issues_nothing_and_records_what_it_would_have_done(admin_user):
    rule = battery_rule(admin_user, {"max_per_device_per_hour": 1, "cooldown_s": 0}, remediation_dry_run=True)
    d = DeviceFactory()
    for minute in (0, 2):
        battery([d], 5)
        cycle(T0 + timedelta(minutes=minute))
        battery([d], 80)
        cycle(T0 + timedelta(minutes=minute + 1))
    assert not Command.objects.exists()
    first, second = RemediationRun.objects.filter(rule=rule).order_by("at")
    assert (first.state, first.reason) == ("dry_run", "dry run: would run launch_app com.example.kiosk")
    # its own dry runs count, so the record shows the cap it would have hit
    assert (second.state, second.reason) == ("skipped", "at most 1 run per device per hour")
    assert AlertEvent.objects.filter(kind="remediation_dry_run").count() == 1


# --- results -------------------------------------------------------------------------------------


def test_a_run_follows_its_delivery_and_the_alert_shows_it(admin_user):
    battery_rule(admin_user, {"cooldown_s": 0})
    ok, failing, rejecting, silent = devices = [DeviceFactory() for _ in range(4)]
    battery(devices, 5)
    cycle(T0)
    at = T0 + timedelta(seconds=20)
    report(ok, "succeeded", at)
    report(failing, "failed", at, error="activity not found")
    report(rejecting, "rejected", at, reason="not_allowed")
    cycle(T0 + timedelta(seconds=30))
    commands.expire_deliveries(now=T0 + timedelta(hours=1, seconds=1))
    cycle(T0 + timedelta(hours=1, seconds=2))
    by_device = {r.device_id: (r.state, r.reason) for r in RemediationRun.objects.all()}
    assert by_device == {
        ok.pk: ("succeeded", ""),
        failing.pk: ("failed", "failed on the device: activity not found"),
        rejecting.pk: ("failed", "rejected by the device: not_allowed"),
        silent.pk: ("failed", "expired before the device ran it"),
    }
    assert RemediationRun.objects.get(device_id=ok.pk).finished_at == at
    alert = Alert.objects.get(subject_id=str(failing.pk))
    assert list(alert.events.values_list("kind", flat=True)) == [
        "fired", "remediation_issued", "remediation_failed", "escalated"]


def test_a_failed_remediation_escalates_by_email_even_when_the_rule_is_quiet(admin_user, smtp):
    rule = battery_rule(admin_user, quiet=True)
    d = DeviceFactory(alias="till-7")
    battery([d], 5)
    cycle(T0)
    with time_machine.travel(T0 + timedelta(seconds=10), tick=False):
        tasks.send_due()
    assert not Notification.objects.filter(event="fired").exists()  # quiet: nobody told it fired
    report(d, "failed", T0 + timedelta(seconds=20), error="activity not found")
    cycle(T0 + timedelta(seconds=30))
    with time_machine.travel(T0 + timedelta(seconds=40), tick=False):
        assert tasks.send_due() == 1
    (rcpts, mail), = smtp.wait_for(1)
    assert rcpts == [admin_user.email]
    assert mail["Subject"].replace("\r\n", "") == "[warning] remediation failed: till-7: battery under 15% and not charging"
    n = Notification.objects.get(event="escalated")
    assert n.rule == rule and "failed on the device: activity not found" in n.detail["reason"]


def test_too_many_failures_stop_the_remediation_until_an_admin_resumes_it(admin_user):
    rule = battery_rule(admin_user, {"stop_last_runs": 4, "stop_failure_pct": 50, "cooldown_s": 0})
    devices = [DeviceFactory() for _ in range(5)]
    battery(devices[:4], 5)
    cycle(T0)
    report(devices[0], "succeeded", T0 + timedelta(seconds=5))
    report(devices[1], "failed", T0 + timedelta(seconds=5))
    cycle(T0 + timedelta(seconds=10))
    rule.refresh_from_db()
    assert rule.remediation_stopped_at is None  # 1 of 4 failed: not above 50%
    report(devices[2], "failed", T0 + timedelta(seconds=15))
    report(devices[3], "failed", T0 + timedelta(seconds=15))
    cycle(T0 + timedelta(seconds=20))
    rule.refresh_from_db()
    assert rule.remediation_stopped_at == T0 + timedelta(seconds=20)
    assert rule.remediation_stopped_reason == "3 of its last 4 runs failed (it stops above 50% of 4)"
    assert AuditEvent.objects.filter(action="alert_rule.remediation_stopped").count() == 1
    assert "Remediation stopped itself" in Notification.objects.get(event="escalated").detail["reason"]
    # a device firing now is left alone, and says why
    battery(devices[4:], 5)
    cycle(T0 + timedelta(seconds=30))
    assert RemediationRun.objects.get(device_id=devices[4].pk).reason.startswith("remediation is stopped: 3 of its last 4")
    assert Command.objects.count() == 1
    assert AuditEvent.objects.filter(action="alert_rule.remediation_stopped").count() == 1  # told once
    # resumed: the old failures no longer count
    with time_machine.travel(T0 + timedelta(seconds=35), tick=False):
        runs.resume_remediation(actor=admin_user, rule=rule)
    battery(devices[4:], 80)
    cycle(T0 + timedelta(seconds=40))
    battery(devices[4:], 5)
    cycle(T0 + timedelta(seconds=50))
    assert Command.objects.count() == 2
    report(devices[4], "failed", T0 + timedelta(seconds=55))
    cycle(T0 + timedelta(seconds=60))
    rule.refresh_from_db()
    assert rule.remediation_stopped_at is None  # 1 failure since the resume: not above 2 of 4


def test_an_alert_resolved_after_a_successful_run_says_so(admin_user):
    battery_rule(admin_user)
    fixed, unfixed, same_cycle = devices = [DeviceFactory() for _ in range(3)]
    battery(devices, 5)
    cycle(T0)
    report(fixed, "succeeded", T0 + timedelta(seconds=5))
    report(unfixed, "failed", T0 + timedelta(seconds=5))
    cycle(T0 + timedelta(seconds=10))
    battery([fixed, unfixed], 80)
    cycle(T0 + timedelta(seconds=20))
    # the success and the resolve land in the same cycle: the results pass runs first
    report(same_cycle, "succeeded", T0 + timedelta(seconds=25))
    battery([same_cycle], 80)
    cycle(T0 + timedelta(seconds=30))
    credited = dict(Alert.objects.values_list("subject_id", "resolved_by_remediation"))
    assert credited == {str(fixed.pk): True, str(unfixed.pk): False, str(same_cycle.pk): True}
    assert AlertEvent.objects.filter(kind="resolved_by_remediation").count() == 2


def test_an_alert_that_fires_again_is_not_credited_with_the_old_success(admin_user):
    battery_rule(admin_user, {"cooldown_s": 3600})
    d = DeviceFactory()
    battery([d], 5)
    cycle(T0)
    report(d, "succeeded", T0 + timedelta(seconds=5))
    battery([d], 80)
    cycle(T0 + timedelta(seconds=10))
    battery([d], 5)
    cycle(T0 + timedelta(minutes=1))  # fires again, held back by the cool-down
    battery([d], 80)
    cycle(T0 + timedelta(minutes=2))
    alert = Alert.objects.get()
    assert alert.fire_count == 2 and not alert.resolved_by_remediation


def test_re_applying_the_policy_pushes_a_sync_and_judges_the_next_policy_report(admin_user, settings, monkeypatch,
                                                                                 capture_on_commit):
    from commands import tasks as command_tasks
    from commands.policies import reports
    from commands.policies import services as policies

    pushed = []
    monkeypatch.setattr(command_tasks.push_policy_sync, "delay", lambda ids: pushed.append(sorted(ids)))
    settings.FCM_ENABLED = True
    applied, failing, silent, no_policy = devices = [DeviceFactory(fcm_token=f"token-{i}") for i in range(4)]
    policy = policies.create_policy(actor=admin_user, name="Kiosk", items={"kiosk": {"package": "com.example.kiosk"}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"device_ids": [str(d.pk) for d in devices[:3]]})
    pushed.clear()
    rule = battery_rule(admin_user, {"type": "sync_policy", "params": {}})
    battery(devices, 5)
    with capture_on_commit(execute=True):
        cycle(T0)
    assert pushed == [sorted(str(d.pk) for d in devices[:3])] and not Command.objects.exists()
    assert RemediationRun.objects.get(device_id=no_policy.pk).reason == "the device has no policy"
    version = policy.current_id
    policies.record_policy_status(device_id=applied.pk, version=version, items={"kiosk": {"state": "applied"}},
                                  now=T0 + timedelta(seconds=5))
    policies.record_policy_status(device_id=failing.pk, version=version, items={"kiosk": {"state": "failed"}},
                                  now=T0 + timedelta(seconds=5))
    reports.flush_all()  # the 1 s flush of the reports' write-behind
    cycle(T0 + timedelta(seconds=10))
    cycle(T0 + timedelta(hours=1))
    by_device = {r.device_id: (r.state, r.reason) for r in RemediationRun.objects.filter(rule=rule)}
    assert by_device == {
        applied.pk: ("succeeded", ""),
        failing.pk: ("failed", "the policy was applied again, not every item: kiosk (failed)"),
        silent.pk: ("failed", "no policy report from the device in time"),
        no_policy.pk: ("skipped", "the device has no policy"),
    }


def test_re_applying_the_policy_needs_push(admin_user, settings):
    settings.FCM_ENABLED = False
    rule = battery_rule(admin_user, {"type": "sync_policy", "params": {}})
    d = DeviceFactory()
    battery([d], 5)
    cycle(T0)
    run = RemediationRun.objects.get(rule=rule)
    assert (run.state, run.action) == ("skipped", "sync_policy")
    assert "needs push notifications (FCM)" in run.reason
