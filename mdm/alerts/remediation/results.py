"""What became of issued runs (docs/alerts.md "Auto-remediation"): a cheap pass over the few runs
in flight at every evaluation cycle follows each to its command's delivery for that device (or,
for a policy sync, to the device's next policy report), escalates failures and lets the rule stop
itself; and an alert that resolves after a successful run is marked resolved by remediation."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from commands.models import FINAL_STATES, Delivery, DeliveryState
from devices.models import DevicePolicyState
from mdm import realtime
from mdm.alerts.models import Alert, AlertEvent, AlertRule, RemediationRun
from mdm.alerts.remediation.rules import GUARDRAILS, SYNC_POLICY, guardrails
from mdm.alerts.remediation.runs import auto_stop, escalate, record_events

R = RemediationRun.State
# A success counts for an alert resolving at most this long after its condition cleared.
CREDIT_WINDOW = timedelta(minutes=30)


def _why(state: str, reason: str, error: str) -> str:
    return {DeliveryState.FAILED: f"failed on the device: {error or 'no error given'}",
            DeliveryState.REJECTED: f"rejected by the device: {reason or error}",
            DeliveryState.EXPIRED: "expired before the device ran it",
            DeliveryState.CANCELLED: "cancelled"}.get(state, "")


def follow_results(now: datetime) -> int:
    """Issued runs whose delivery reached a final state (or whose device reported its policy
    after a sync) become succeeded or failed; failures escalate and may stop the rule's
    remediation. Returns how many runs finished."""
    runs = {r.pk: r for r in RemediationRun.objects.filter(state=R.ISSUED)}
    if not runs:
        return 0
    done: dict = {}  # run id -> (state, reason, finished_at)
    commands = [r for r in runs.values() if r.command_id]
    if commands:
        deliveries = {(c, d): (s, reason, error, at) for c, d, s, reason, error, at in Delivery.objects.filter(
            command_id__in={r.command_id for r in commands}, device_id__in={r.device_id for r in commands})
            .values_list("command_id", "device_id", "state", "reason", "error", "finished_at")}
        for r in commands:
            found = deliveries.get((r.command_id, r.device_id))
            if found is None:
                done[r.pk] = (R.FAILED, "the command's delivery is gone (device or command deleted)", now)
            elif found[0] in FINAL_STATES:
                s, reason, error, at = found
                done[r.pk] = (R.SUCCEEDED, "", at or now) if s == DeliveryState.SUCCEEDED else (R.FAILED, _why(s, reason, error), at or now)
    syncs = [r for r in runs.values() if r.action == SYNC_POLICY and not r.command_id]
    if syncs:
        done.update(_policy_results(syncs, now))
    finished = []
    with transaction.atomic():
        for pk, (state, reason, at) in done.items():
            # conditional: two cycles at once finish a run once
            if RemediationRun.objects.filter(pk=pk, state=R.ISSUED).update(state=state, reason=reason[:200], finished_at=at):
                run = runs[pk]
                run.state, run.reason, run.finished_at = state, reason[:200], at
                finished.append(run)
        if not finished:
            return 0
        record_events(finished, now)
        realtime.broadcast("alerts", "")  # on commit
        _credit([r for r in finished if r.state == R.SUCCEEDED], now, late=True)
        rules = {r.rule_id for r in finished}
        for rule in AlertRule.objects.filter(pk__in=rules):
            failed = [r for r in finished if r.rule_id == rule.pk and r.state == R.FAILED]
            if failed:
                escalate(rule, failed, now)
            auto_stop(rule, now)
    return len(finished)


def _policy_results(runs, now: datetime) -> dict:
    states = {d: (v, applied, ok, at, items) for d, v, applied, ok, at, items in DevicePolicyState.objects.filter(
        device_id__in={r.device_id for r in runs}).values_list("device_id", "version", "applied_version", "all_applied",
                                                               "reported_at", "items")}
    timeouts = {pk: guardrails(rem)["expires_in_s"] for pk, rem in
                AlertRule.objects.filter(pk__in={r.rule_id for r in runs}).values_list("pk", "remediation")}
    done = {}
    for r in runs:
        version, applied, ok, at, items = states.get(r.device_id, (0, None, False, None, {}))
        if at is not None and at >= r.at:
            if version and applied == version and ok:
                done[r.pk] = (R.SUCCEEDED, "", at)
            else:
                bad = ", ".join(f"{k} ({v.get('state')})" for k, v in sorted((items or {}).items())
                                if isinstance(v, dict) and v.get("state") != "applied")
                done[r.pk] = (R.FAILED, f"the policy was applied again, not every item: {bad or 'an older version'}", at)
        elif now >= r.at + timedelta(seconds=timeouts.get(r.rule_id, GUARDRAILS["expires_in_s"].default)):
            done[r.pk] = (R.FAILED, "no policy report from the device in time", now)
    return done


def credit_resolved(alert_ids, now: datetime) -> None:
    """Alerts that resolved now after a successful run of this firing: resolved by remediation."""
    runs = RemediationRun.objects.filter(alert_id__in=list(alert_ids), state=R.SUCCEEDED, at__gte=F("alert__fired_at"))
    _credit(list(runs), now, late=False)


def _credit(runs, now: datetime, *, late: bool) -> None:
    """Mark the alerts of these successful runs resolved by remediation: those resolved now (or,
    `late`, before the result landed but after the run) whose condition cleared within
    CREDIT_WINDOW of the success."""
    if not runs:
        return
    alerts = {a.pk: a for a in Alert.objects.filter(pk__in={r.alert_id for r in runs}, state=Alert.State.RESOLVED,
                                                    resolved_by_remediation=False).select_related("rule")}
    credited = {}
    for r in runs:
        a = alerts.get(r.alert_id)
        if a is None or a.resolved_at is None or (a.fired_at and r.at < a.fired_at) or (late and a.resolved_at < r.at):
            continue  # not this firing's run, or resolved before it ran
        cleared = a.resolved_at - timedelta(seconds=a.rule.clear_s)
        if r.finished_at is not None and r.finished_at >= cleared - CREDIT_WINDOW:
            credited[a.pk] = r
    if credited:
        Alert.objects.filter(pk__in=list(credited)).update(resolved_by_remediation=True)
        AlertEvent.objects.bulk_create([AlertEvent(alert_id=a, at=now, kind="resolved_by_remediation", detail={
            "run": str(r.pk), "action": r.action}) for a, r in credited.items()])
