"""The alert state machine, per rule kind, with frozen time (docs/alerts.md "Low noise")."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from devices.models import DeviceStatus
from devices.tests.factories import DeviceFactory, DeviceGroupFactory
from mdm.alerts import services
from mdm.alerts.models import Alert, AlertEvent, AlertRule, Notification

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def only(kind: str) -> AlertRule:
    """Keep only the seeded rule of this kind enabled; return it."""
    AlertRule.objects.exclude(kind=kind).update(enabled=False)
    return AlertRule.objects.get(seed_key=kind)


def status(device, **fields):
    DeviceStatus.objects.filter(device=device).update(**fields)


def cycle(at):
    with time_machine.travel(at, tick=False):
        return services.run_cycle(timezone.now())


def test_every_builtin_kind_is_seeded_enabled_and_tells_the_admins():
    rules = AlertRule.objects.exclude(seed_key="")
    assert rules.count() == 16
    assert all(r.enabled and r.notify == {"admins": True} for r in rules)
    assert rules.get(kind="bad_envelopes").hold_s == 0


def test_battery_low_fires_after_its_hold_time_not_before():
    rule = only("battery_low")
    rule.hold_s, rule.clear_s = 120, 300
    rule.save()
    d = DeviceFactory(alias="till-1")
    status(d, online=True, last_seen=T0, battery_pct=7, charging=False)
    assert cycle(T0)["opened"] == 1
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "pending" and alert.value == 7
    assert cycle(T0 + timedelta(seconds=119))["fired"] == 0
    assert cycle(T0 + timedelta(seconds=120))["fired"] == 1
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.fired_at == T0 + timedelta(seconds=120)


def test_a_charging_device_or_a_pending_alert_that_clears_never_fires():
    rule = only("battery_low")
    d = DeviceFactory()
    status(d, online=True, last_seen=T0, battery_pct=7, charging=False)
    cycle(T0)
    status(d, charging=True)
    cycle(T0 + timedelta(seconds=30))
    assert not Alert.objects.filter(rule=rule).exists()  # a pending alert that never fired leaves no trace


def test_it_resolves_only_after_the_clear_time():
    rule = only("storage_low")
    rule.hold_s, rule.clear_s = 0, 600
    rule.save()
    d = DeviceFactory()
    status(d, online=True, last_seen=T0, storage_total_mb=1000, storage_free_mb=50)
    assert cycle(T0)["fired"] == 1
    status(d, storage_free_mb=500)
    assert cycle(T0 + timedelta(seconds=10))["resolved"] == 0
    # back under the limit while clearing: the clock restarts
    status(d, storage_free_mb=50)
    cycle(T0 + timedelta(seconds=300))
    status(d, storage_free_mb=500)
    cycle(T0 + timedelta(seconds=310))
    assert cycle(T0 + timedelta(seconds=909))["resolved"] == 0
    assert cycle(T0 + timedelta(seconds=910))["resolved"] == 1
    assert Alert.objects.get(rule=rule).state == "resolved"


def test_one_open_alert_per_rule_and_subject():
    rule = only("battery_hot")
    rule.hold_s = 0
    rule.save()
    d = DeviceFactory()
    status(d, online=True, last_seen=T0, battery_temp_c=50.0)
    for s in range(0, 60, 5):
        cycle(T0 + timedelta(seconds=s))
    assert Alert.objects.filter(rule=rule).count() == 1
    assert AlertEvent.objects.filter(alert__rule=rule, kind="fired").count() == 1


def test_flapping_folds_into_one_alert_told_once_more():
    rule = only("battery_hot")
    rule.hold_s, rule.clear_s = 0, 0
    rule.save()
    d = DeviceFactory()
    fired_total = 0
    for i in range(6):
        status(d, online=True, last_seen=T0, battery_temp_c=50.0)
        fired_total += cycle(T0 + timedelta(minutes=2 * i))["fired"]
        status(d, battery_temp_c=30.0)
        cycle(T0 + timedelta(minutes=2 * i + 1))
    alert = Alert.objects.get(rule=rule)
    assert alert.flapping and alert.fire_count == 6
    # told on the 1st and 2nd fire, and once when it started flapping (the 3rd): never after
    assert fired_total == 3


def test_offline_for_n_minutes_is_judged_by_last_seen_and_scope():
    rule = only("device_offline")
    lobby = DeviceGroupFactory(name="Lobby")
    rule.scope = {"group": "Lobby"}
    rule.save()
    inside, outside = DeviceFactory(group=lobby), DeviceFactory()
    for d in (inside, outside):
        status(d, online=False, last_seen=T0 - timedelta(minutes=11))
    cycle(T0)
    assert list(Alert.objects.values_list("subject_id", flat=True)) == [str(inside.pk)]
    assert Alert.objects.get().group_name == "Lobby"


def test_bad_envelopes_fire_on_the_first_report():
    rule = only("bad_envelopes")
    d = DeviceFactory()
    status(d, last_bad_envelope_at=T0, bad_envelopes_total=1)
    assert cycle(T0)["fired"] == 1
    assert Alert.objects.get(rule=rule).severity == "critical"


def test_security_patch_older_than_n_days():
    only("security_patch_old")
    old, new = DeviceFactory(), DeviceFactory()
    status(old, online=True, last_seen=T0, security_patch=date(2026, 1, 5))
    status(new, online=True, last_seen=T0, security_patch=date(2026, 11, 5))
    cycle(T0)
    assert list(Alert.objects.values_list("subject_id", flat=True)) == [str(old.pk)]


def test_alerts_of_one_rule_firing_together_make_one_notification():
    rule = only("device_offline")
    lobby = DeviceGroupFactory(name="Lobby")
    devices = [DeviceFactory(group=lobby) for _ in range(5)]
    for i, d in enumerate(devices):
        status(d, last_seen=T0 - timedelta(minutes=10, seconds=1 + i))
    cycle(T0)
    late = DeviceFactory(group=lobby)
    status(late, last_seen=T0 - timedelta(minutes=10) + timedelta(seconds=3))
    cycle(T0 + timedelta(seconds=5))
    n = Notification.objects.get(rule=rule)
    assert n.state == "collecting" and n.alerts.count() == 6
    assert n.send_after == T0 + timedelta(seconds=10)
    # a device joining late keeps the window open a little (ALERT_GROUP_QUIET_S), never past the cap
    later = DeviceFactory(group=lobby)
    status(later, last_seen=T0 - timedelta(minutes=10) + timedelta(seconds=8))
    cycle(T0 + timedelta(seconds=9))
    n.refresh_from_db()
    assert n.alerts.count() == 7 and n.send_after == T0 + timedelta(seconds=12)
    cycle(T0 + timedelta(seconds=58))
    n.refresh_from_db()
    assert n.send_after == T0 + timedelta(seconds=12)  # nobody joined: unchanged


def test_a_flush_that_wrote_heartbeats_nudges_the_device_rules_once_per_window(settings):
    from mdm import nudge, redis_client

    client = redis_client.client()
    client.delete(f"{settings.CACHE_PREFIX}:alerts:nudge:devices")
    sent = []
    from unittest import mock

    with mock.patch.object(nudge.current_app, "send_task", side_effect=lambda name, args, **kw: sent.append((name, args))):
        assert nudge.nudge("devices") is True
        assert nudge.nudge("devices") is False  # debounced
        assert nudge.nudge("commands") is True
    assert sent == [(nudge.TASK, ["devices"]), (nudge.TASK, ["commands"])]


def test_the_nudged_evaluation_runs_only_its_family():
    from mdm.alerts import tasks

    only("battery_low")
    d = DeviceFactory()
    status(d, online=True, last_seen=timezone.now(), battery_pct=3, charging=False)
    assert tasks.evaluate_family("commands")["opened"] == 0
    assert tasks.evaluate_family("devices")["opened"] == 1
    assert tasks.evaluate_family("nonsense") == {}


def test_a_device_whose_policy_kiosk_is_not_in_front_fires_after_its_hold(admin_user):
    from commands.policies import services as policies

    rule = only("kiosk_not_in_front")
    lobby = DeviceGroupFactory(name="Lobby")
    in_front, elsewhere, unknown = (DeviceFactory(group=lobby) for _ in range(3))
    policy = policies.create_policy(actor=admin_user, name="Kiosk", items={"kiosk": {"package": "com.example.kiosk", "lock_task": True}})
    policies.assign_policy(actor=admin_user, policy=policy, target={"group": "Lobby"})
    status(in_front, online=True, last_seen=T0, foreground_app="com.example.kiosk")
    status(elsewhere, online=True, last_seen=T0, foreground_app="com.android.settings")
    status(unknown, online=True, last_seen=T0, foreground_app="")
    cycle(T0)
    assert cycle(T0 + timedelta(seconds=rule.hold_s))["fired"] == 1
    alert = Alert.objects.get(rule=rule)
    assert alert.subject_id == str(elsewhere.pk) and alert.value == "com.android.settings"


def test_the_offline_rule_is_looked_at_again_when_the_next_device_crosses_its_threshold():
    from unittest import mock

    from mdm.alerts import tasks
    from mdm.celery import app

    rule = only("device_offline")
    quiet, quieter = DeviceFactory(), DeviceFactory()
    now = timezone.now()
    status(quiet, online=True, last_seen=now - timedelta(seconds=40))
    status(quieter, online=True, last_seen=now - timedelta(seconds=25))
    scheduled = []
    app.conf.task_always_eager = False  # the eager default (make run) sets no timers
    try:
        with mock.patch.object(tasks.evaluate_kind, "apply_async",
                               side_effect=lambda args, countdown, expires: scheduled.append((args, countdown, expires))):
            from mdm import redis_client
            from django.conf import settings

            redis_client.client().delete(f"{settings.CACHE_PREFIX}:alerts:timer:device_offline")
            services.run_cycle(now)
            services.run_cycle(now)  # the same look is already set: not twice
    finally:
        app.conf.task_always_eager = True
    assert len(scheduled) == 1 and scheduled[0][0] == ["device_offline"]
    # the device silent for 40 s crosses 10 min in 9 min 20 s
    assert abs(scheduled[0][1] - (rule.params["minutes"] * 60 - 40)) < 2
    assert scheduled[0][2] > scheduled[0][1]  # a timer minutes ahead is not expired before it is due


def test_alerts_opened_in_bulk_are_whole_rows_with_their_fired_event():
    # The first cycle of a new installation opens thousands at once (COPY, mdm/sql.copy_rows):
    # the rows must read as the ORM would have written them.
    rule = only("bad_envelopes")
    devices = [DeviceFactory() for _ in range(3)]
    for d in devices:
        status(d, last_bad_envelope_at=T0, bad_envelopes_total=2)
    out = cycle(T0)
    assert out["opened"] == 3 and out["fired"] == 3
    alerts = list(Alert.objects.filter(rule=rule))
    assert {a.subject_id for a in alerts} == {str(d.pk) for d in devices}
    for a in alerts:
        assert (a.state, a.fired_at, a.fire_count, a.flapping) == ("firing", T0, 1, False)
        assert a.acknowledged_at is None and a.resolved_by_remediation is False and a.snoozed_until is None
        assert [e.kind for e in a.events.all()] == ["fired"]
    n = Notification.objects.get(rule=rule)
    assert set(n.alerts.values_list("pk", flat=True)) == {a.pk for a in alerts}


def test_a_held_rule_opens_pending_alerts_with_no_event():
    rule = only("battery_low")
    d = DeviceFactory()
    status(d, battery_pct=3, charging=False, online=True, last_seen=T0)
    cycle(T0)
    a = Alert.objects.get(rule=rule)
    assert a.state == "pending" and a.fired_at is None and a.fire_count == 0
    assert not a.events.exists() and a.value == 3


def test_with_flapping_at_the_first_fire_a_new_alert_flaps_at_once(settings):
    settings.ALERT_FLAP_FIRES = 1
    rule = only("bad_envelopes")
    d = DeviceFactory()
    status(d, last_bad_envelope_at=T0, bad_envelopes_total=1)
    cycle(T0)
    a = Alert.objects.get(rule=rule)
    assert a.flapping and sorted(e.kind for e in a.events.all()) == ["fired", "flapping"]


@pytest.mark.parametrize("kind, silent, back", [
    # the value a kind matches with is a datetime or a date here: stored as JSON text on a re-open too
    ("device_offline", {"online": False, "last_seen": T0 - timedelta(minutes=11)}, {"online": True, "last_seen": T0}),
    ("security_patch_old", {"online": True, "last_seen": T0, "security_patch": date(2025, 1, 5)},
     {"security_patch": T0.date()}),
])
def test_a_subject_matching_again_within_the_flap_window_reopens_its_alert(kind, silent, back):
    rule = only(kind)
    rule.hold_s, rule.clear_s = 0, 0
    rule.save()
    d = DeviceFactory()
    status(d, **silent)
    assert cycle(T0)["fired"] == 1
    status(d, **back)
    assert cycle(T0 + timedelta(minutes=1))["resolved"] == 1
    status(d, **{k: (v + timedelta(minutes=1) if isinstance(v, datetime) else v) for k, v in silent.items()})
    assert cycle(T0 + timedelta(minutes=2))["fired"] == 1
    alert = Alert.objects.get(rule=rule)  # the same row, re-opened
    assert (alert.state, alert.fire_count) == ("firing", 2)
    assert isinstance(alert.value, str) and alert.value[:4] in ("2025", "2026")
    assert [e.kind for e in alert.events.order_by("at", "kind")] == ["fired", "resolved", "fired", "reopened"]


def test_a_rule_that_cannot_be_evaluated_does_not_stop_the_others(monkeypatch, caplog):
    import dataclasses

    from mdm.alerts import kinds

    AlertRule.objects.exclude(kind__in=("battery_hot", "device_offline")).update(enabled=False)
    for rule in AlertRule.objects.filter(enabled=True):
        rule.hold_s = 0
        rule.save()
    d = DeviceFactory()
    status(d, online=False, last_seen=T0 - timedelta(minutes=11), battery_temp_c=50.0)

    def broken(rule, now):
        raise RuntimeError("broken kind")

    monkeypatch.setitem(kinds.KINDS, "battery_hot", dataclasses.replace(kinds.KINDS["battery_hot"], matches=broken))
    counts = cycle(T0)
    assert counts["fired"] == 1
    assert list(Alert.objects.values_list("rule__kind", flat=True)) == ["device_offline"]
    assert "could not be evaluated" in caplog.text


def test_a_failing_rule_is_marked_told_after_its_hold_and_cleared_once_it_works(monkeypatch):
    import dataclasses

    from mdm import metrics
    from mdm.alerts import kinds

    AlertRule.objects.exclude(kind__in=("battery_hot", "server_rule_failing")).update(enabled=False)
    hot = AlertRule.objects.get(seed_key="battery_hot")
    watcher = AlertRule.objects.get(seed_key="server_rule_failing")
    assert (watcher.severity, watcher.hold_s, watcher.clear_s) == ("critical", 300, 60)
    working = kinds.KINDS["battery_hot"]

    def broken(rule, now):
        raise RuntimeError('column "x" does not exist\nDETAIL: a row\'s values')

    monkeypatch.setitem(kinds.KINDS, "battery_hot", dataclasses.replace(working, matches=broken))
    failures = metrics.ALERT_RULE_FAILURES.labels(kind="battery_hot")
    counted = failures._value.get()
    cycle(T0)
    hot.refresh_from_db()
    # The error's type and first line; its detail lines (which may quote values) stay in the log.
    assert (hot.failing_since, hot.failure) == (T0, 'RuntimeError: column "x" does not exist')
    assert failures._value.get() == counted + 1
    cycle(T0 + timedelta(minutes=1))
    hot.refresh_from_db()
    assert hot.failing_since == T0  # since the first failure, not the latest
    alert = Alert.objects.get(rule=watcher)
    assert (alert.subject_type, alert.subject_id, alert.subject_label, alert.state) == ("rule", str(hot.pk), hot.name, "pending")
    assert cycle(T0 + timedelta(minutes=5, seconds=59))["fired"] == 0
    assert cycle(T0 + timedelta(minutes=6))["fired"] == 1
    alert.refresh_from_db()
    assert alert.state == "firing" and alert.value == hot.failure
    assert Notification.objects.filter(rule=watcher, event="fired").exists()

    monkeypatch.setitem(kinds.KINDS, "battery_hot", working)
    cycle(T0 + timedelta(minutes=7))
    hot.refresh_from_db()
    assert (hot.failing_since, hot.failure) == (None, "")
    cycle(T0 + timedelta(minutes=8))  # the watcher sees it working: clearing
    assert cycle(T0 + timedelta(minutes=9))["resolved"] == 1
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_disabled_failing_rule_is_not_told():
    AlertRule.objects.exclude(kind="server_rule_failing").update(enabled=False)
    watcher = AlertRule.objects.get(seed_key="server_rule_failing")
    AlertRule.objects.filter(seed_key="battery_hot").update(failing_since=T0, failure="RuntimeError: x")
    cycle(T0)
    assert not Alert.objects.filter(rule=watcher).exists()
    AlertRule.objects.filter(seed_key="battery_hot").update(enabled=True)
    cycle(T0 + timedelta(seconds=1))
    assert Alert.objects.filter(rule=watcher, subject_type="rule").count() == 1
