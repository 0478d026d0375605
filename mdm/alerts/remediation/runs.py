"""Running a rule's remediation on the device alerts that fired (docs/alerts.md
"Auto-remediation"): the guardrails decide which devices it may touch now, the others get a
skipped run saying why; the devices that pass get one command (or a policy sync, or in a dry run
nothing), and every alert gets its RemediationRun and a timeline event. Also the stop of its own
when too many runs failed, and an admin's resume."""

import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from commands import targeting
from commands.models import CommandType
from commands.params import ParamsError
from commands.services import issue_command
from devices.models import Device
from mdm import audit, fcm, realtime
from mdm.alerts import notify
from mdm.alerts.models import Alert, AlertEvent, AlertRule, RemediationRun
from mdm.alerts.remediation.rules import SYNC_POLICY, action_of, describe, find_preset, find_wifi_config, guardrails

R = RemediationRun.State
SENT = (R.ISSUED, R.SUCCEEDED, R.FAILED)  # runs that reached (or tried to reach) a device


def _lock() -> None:
    """Remediations are decided one at a time, so two cycles (the sweep and a flush's nudge)
    cannot both pass a device or a fleet share that only one of them may use."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('mdm.alerts.remediation'))")


def remediate(*, rule: AlertRule, alert_ids, now: datetime) -> list[RemediationRun]:
    """Run the rule's remediation for its device alerts that fired: the devices that pass the
    guardrails get one command (or, in a dry run, nothing), every alert gets its run recorded."""
    with transaction.atomic():
        _lock()
        rule = AlertRule.objects.get(pk=rule.pk)  # as it is now: stopped, dry run, edited
        alerts = list(Alert.objects.filter(pk__in=list(alert_ids), subject_type=Alert.Subject.DEVICE)
                      .order_by("since", "subject_id").values_list("pk", "subject_id"))
        if not rule.enabled or not rule.remediation or not alerts:
            return []
        device_of = {pk: uuid.UUID(sid) for pk, sid in alerts}
        skipped: dict = {}  # device id -> reason
        if rule.remediation_stopped_at:
            skipped = {d: f"remediation is stopped: {rule.remediation_stopped_reason}" for d in device_of.values()}
        else:
            active = set(Device.objects.active().filter(pk__in=list(device_of.values())).values_list("pk", flat=True))
            skipped = {d: "the device was deleted" for d in device_of.values() if d not in active}
            skipped.update(_guardrails(rule, [d for d in device_of.values() if d in active], now))
        chosen = [d for d in device_of.values() if d not in skipped]
        state, command_id, reason = _run(rule, chosen, skipped, now)
        action = action_of(rule.remediation)
        runs = [RemediationRun(rule=rule, alert_id=a, device_id=d, action=action, at=now,
                               **({"state": R.SKIPPED, "reason": skipped[d][:200]} if d in skipped else
                                  {"state": state, "command_id": command_id, "reason": reason[:200],
                                   "finished_at": now if state == R.FAILED else None}))
                for a, d in device_of.items()]
        RemediationRun.objects.bulk_create(runs)
        record_events(runs, now)
        realtime.broadcast("alerts", "")  # on commit: the alerts page shows what was tried
        if chosen:
            audit.record(actor=None, action="alert_rule.remediate", target=rule, data={
                "remediation": describe(rule.remediation), "state": state, "devices": len(chosen),
                "skipped": len(skipped), **({"command": str(command_id)} if command_id else {})})
        if state == R.FAILED and chosen:
            escalate(rule, [r for r in runs if r.state == R.FAILED], now)
            auto_stop(rule, now)
    return runs


def _guardrails(rule: AlertRule, device_ids: list, now: datetime) -> dict:
    """{device id: why it is left alone} for those the guardrails hold back. In a dry run, the
    rule's own dry runs count as runs, so the record shows what the caps would have done."""
    g = guardrails(rule.remediation)
    counted = Q(state__in=SENT)
    if rule.remediation_dry_run:
        counted |= Q(rule=rule, state=R.DRY_RUN)
    hour_ago, cool_since = now - timedelta(hours=1), now - timedelta(seconds=g["cooldown_s"])
    per_device = {d: (n, last) for d, n, last in RemediationRun.objects.filter(
        counted, device_id__in=device_ids, at__gte=min(hour_ago, cool_since)).values("device_id")
        .annotate(n=Count("pk", filter=Q(at__gte=hour_ago)), last=Max("at")).values_list("device_id", "n", "last")}
    window = timedelta(seconds=g["fleet_window_s"])
    used = set(RemediationRun.objects.filter(counted, rule=rule, at__gte=now - window).values_list("device_id", flat=True))
    in_scope = _scope_count(rule)
    cap = max(1, in_scope * g["max_fleet_pct"] // 100)
    held = {}
    for d in device_ids:
        n, last = per_device.get(d, (0, None))
        if last is not None and g["cooldown_s"] and last > cool_since:
            held[d] = f"cool-down: remediated {_ago(now - last)} ago (cool-down {_ago(timedelta(seconds=g['cooldown_s']))})"
        elif n >= g["max_per_device_per_hour"]:
            n = g["max_per_device_per_hour"]
            held[d] = f"at most {n} run{'s' if n != 1 else ''} per device per hour"
        elif d not in used and len(used) >= cap:
            held[d] = (f"fleet share: at most {g['max_fleet_pct']}% of the {in_scope} devices in scope ({cap}) "
                       f"per {_ago(window)}")
        else:
            used.add(d)
    return held


def _ago(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    return f"{s // 3600} h {s % 3600 // 60} min" if s >= 3600 else f"{s // 60} min" if s >= 60 else f"{s} s"


def _scope_count(rule: AlertRule) -> int:
    devices = Device.objects.active()
    if rule.scope and not rule.scope.get("all"):
        try:
            devices = targeting.resolve(targeting.normalize(rule.scope))
        except ParamsError:
            return 0
    return devices.count()


def _run(rule: AlertRule, chosen: list, skipped: dict, now: datetime) -> tuple[str, uuid.UUID | None, str]:
    """Issue the remediation to `chosen` (moving to `skipped` those it cannot reach); returns the
    runs' state, the command's id and a reason."""
    remediation, g = rule.remediation, guardrails(rule.remediation)
    if not chosen:
        return R.SKIPPED, None, ""
    if rule.remediation_dry_run:
        return R.DRY_RUN, None, f"dry run: would run {describe(remediation)}"
    if remediation.get("type") == SYNC_POLICY:
        return _sync_policy(chosen, skipped)
    kwargs = {"type": remediation.get("type", ""), "params": dict(remediation.get("params", {}))}
    try:
        if "preset" in remediation:
            kwargs = {"preset": find_preset(remediation["preset"], remediation.get("preset_version"))}
            if kwargs["preset"] is None:
                raise ParamsError({"preset": [f"the preset {remediation['preset']} is archived or gone"]})
        elif kwargs["type"] == CommandType.WIFI_CONFIGURE:
            config = find_wifi_config(kwargs["params"].get("wifi_config"))
            if config is None:
                raise ParamsError({"wifi_config": ["the Wi-Fi config is gone"]})
            kwargs = {"type": kwargs["type"], "wifi_config": config, "params": {
                "ssid": config.ssid, "security": config.security, "password": config.decrypted_password(),
                "hidden": config.hidden}}
        with transaction.atomic():
            issued = issue_command(actor=f"alert-rule:{rule.name}"[:200], target={"device_ids": [str(d) for d in chosen]},
                                   expires_in_s=g["expires_in_s"], now=now, **kwargs)
    except ParamsError as exc:
        return R.FAILED, None, f"could not issue: {exc.detail}"
    return R.ISSUED, issued.command.pk, f"issued {describe(remediation)}"


def _sync_policy(chosen: list, skipped: dict) -> tuple[str, None, str]:
    """The `sync` push (commands.policies.push): the device fetches its policy and applies it
    again (the document's issued_at differs at each fetch, so the agent re-applies it)."""
    from commands.tasks import push_policy_sync

    rows = {d: (token, version) for d, token, version in Device.objects.filter(pk__in=chosen)
            .values_list("pk", "fcm_token", "policy_state__version")}
    for d in list(chosen):
        token, version = rows.get(d, ("", 0))
        if not fcm.enabled():
            skipped[d] = "re-applying the policy needs push notifications (FCM), which this server does not send"
        elif not version:
            skipped[d] = "the device has no policy"
        elif not token:
            skipped[d] = "the device has no push token"
    chosen[:] = [d for d in chosen if d not in skipped]
    if not chosen:
        return R.SKIPPED, None, ""
    ids = [str(d) for d in chosen]
    transaction.on_commit(lambda: push_policy_sync.delay(ids))
    return R.ISSUED, None, "sync pushed: the device re-applies its policy"


def record_events(runs, now: datetime, **detail) -> None:
    AlertEvent.objects.bulk_create([AlertEvent(alert_id=r.alert_id, at=now, kind=f"remediation_{r.state}", detail={
        "run": str(r.pk), "action": r.action, "reason": r.reason, **({"command": str(r.command_id)} if r.command_id else {}),
        **detail}) for r in runs])


def escalate(rule: AlertRule, failed_runs, now: datetime, reason: str = "") -> None:
    """A remediation failed: tell the rule's recipients, even when the rule is quiet."""
    alert_ids = sorted({r.alert_id for r in failed_runs})
    reason = reason or (f"{len(failed_runs)} remediation run{'s' if len(failed_runs) != 1 else ''} failed "
                        f"({describe(rule.remediation)}): {failed_runs[0].reason}")
    notify.escalate(rule=rule, alert_ids=alert_ids, now=now, reason=reason)
    AlertEvent.objects.bulk_create([AlertEvent(alert_id=a, at=now, kind="escalated", detail={"reason": reason})
                                    for a in alert_ids])


def auto_stop(rule: AlertRule, now: datetime) -> bool:
    """Stop the rule's remediation when more than stop_failure_pct% of its last stop_last_runs
    finished runs failed (counted over stop_last_runs, so it stops as soon as that is certain).
    Recorded on the rule, audited, told once; it stays off until an admin resumes it."""
    if rule.remediation_stopped_at or not rule.remediation:
        return False
    g = guardrails(rule.remediation)
    finished = RemediationRun.objects.filter(rule=rule, state__in=(R.SUCCEEDED, R.FAILED))
    if rule.remediation_resumed_at:
        finished = finished.filter(finished_at__gt=rule.remediation_resumed_at)
    last = list(finished.order_by("-finished_at", "-at").values_list("state", "alert_id")[: g["stop_last_runs"]])
    failed = [a for s, a in last if s == R.FAILED]
    if len(failed) * 100 <= g["stop_last_runs"] * g["stop_failure_pct"]:
        return False
    reason = (f"{len(failed)} of its last {len(last)} runs failed (it stops above {g['stop_failure_pct']}% "
              f"of {g['stop_last_runs']})")
    if not AlertRule.objects.filter(pk=rule.pk, remediation_stopped_at__isnull=True).update(
            remediation_stopped_at=now, remediation_stopped_reason=reason):
        return False  # another cycle stopped it first, and told
    rule.remediation_stopped_at, rule.remediation_stopped_reason = now, reason
    audit.record(actor=None, action="alert_rule.remediation_stopped", target=rule, data={
        "reason": reason, "remediation": describe(rule.remediation)})
    alert_ids = sorted(set(failed))
    AlertEvent.objects.bulk_create([AlertEvent(alert_id=a, at=now, kind="remediation_stopped", detail={"reason": reason})
                                    for a in alert_ids])
    notify.escalate(rule=rule, alert_ids=alert_ids, now=now,
                    reason=f"Remediation stopped itself: {reason}. It stays off until an admin resumes it.")
    return True


def resume_remediation(*, actor, rule: AlertRule, ip=None) -> AlertRule:
    """An admin turns a stopped remediation back on (or restarts its count): runs finished before
    now no longer count for the stop."""
    now = timezone.now()
    with transaction.atomic():
        AlertRule.objects.filter(pk=rule.pk).update(remediation_stopped_at=None, remediation_stopped_reason="",
                                                    remediation_resumed_at=now)
        audit.record(actor=actor, action="alert_rule.remediation_resumed", target=rule, data={
            "was_stopped": rule.remediation_stopped_reason}, ip=ip)
    return AlertRule.objects.get(pk=rule.pk)
