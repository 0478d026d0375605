"""The alert state machine (docs/alerts.md "Low noise"): a rule's current matches (kinds.py) in,
alert transitions out, in a few set-based statements per rule whatever the fleet size.

Per rule and subject: a match opens a pending alert; it fires once the condition held `hold_s`
(at once when 0); a firing alert whose condition is gone starts clearing and resolves after
`clear_s`; a pending one that stops matching before it fired is dropped (it never told anyone).
A subject that matches again within the flapping window after its alert resolved re-opens that
same row, so fire/resolve cycles fold into one alert; the FLAP_FIRES-th fire marks it flapping,
and a flapping alert tells once, not at every cycle."""

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from mdm import metrics, sql, text
from mdm.alerts.kinds import KINDS, Match, device_labels
from mdm.alerts.models import Alert, AlertEvent, AlertRule

A = Alert.State
logger = logging.getLogger(__name__)


def flap_fires() -> int:
    return getattr(settings, "ALERT_FLAP_FIRES", 3)


def flap_window() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALERT_FLAP_WINDOW_S", 3600))


@dataclass
class Outcome:
    """What one evaluation of one rule changed: alerts that fired (ids), resolved (ids), and
    those that fired and are flapping (told once, when they first flap)."""

    rule: AlertRule
    fired: list = field(default_factory=list)
    resolved: list = field(default_factory=list)
    started_flapping: list = field(default_factory=list)
    opened: int = 0

    def __bool__(self):
        return bool(self.fired or self.resolved or self.opened)


def _events(alert_ids, kind: str, now: datetime, detail=None) -> list[AlertEvent]:
    return [AlertEvent(alert_id=i, at=now, kind=kind, detail=detail or {}) for i in alert_ids]


def evaluate_rule(rule: AlertRule, now: datetime, matches: dict[str, Match] | None = None) -> Outcome:
    """Apply the rule's matches now. Runs in its own transaction; a rule evaluated by two workers
    at once is serialised on its row (select_for_update), so transitions never double."""
    kind = KINDS[rule.kind]
    if matches is None:
        matches = kind.matches(rule, now)
    out = Outcome(rule)
    with transaction.atomic():
        AlertRule.objects.select_for_update(no_key=True).filter(pk=rule.pk).first()
        open_rows = {sid: (pk, state, since, clear_since) for pk, sid, state, since, clear_since in
                     Alert.objects.filter(rule=rule, state__in=Alert.OPEN_STATES)
                     .values_list("pk", "subject_id", "state", "since", "clear_since")}
        new_subjects = [sid for sid in matches if sid not in open_rows]
        reopen = {}
        if new_subjects:
            reopen = {sid: pk for pk, sid in Alert.objects.filter(
                rule=rule, state=A.RESOLVED, subject_id__in=new_subjects, resolved_at__gte=now - flap_window())
                .order_by("subject_id", "-resolved_at").distinct("subject_id").values_list("pk", "subject_id")} \
                if _postgres() else _reopen_portable(rule, new_subjects, now)
        if kind.subject == Alert.Subject.DEVICE and new_subjects:
            labels = device_labels(new_subjects)
            for sid in new_subjects:
                label, group = labels.get(sid, (sid, ""))
                matches[sid] = Match(label, matches[sid].value, group)
        hold = timedelta(seconds=rule.hold_s)
        to_fire, back, events = [], [], []
        # New subjects: reopen a recently resolved row (flapping) or create one. A new installation
        # opens thousands at once: created in one COPY, those without a hold time already firing.
        created, created_events = [], []
        fire_now = rule.hold_s == 0
        flaps_at_once = fire_now and flap_fires() <= 1
        for sid in new_subjects:
            m = matches[sid]
            if sid in reopen:
                pk = reopen[sid]
                Alert.objects.filter(pk=pk).update(state=A.PENDING, since=now, clear_since=None, resolved_at=None,
                                                   resolved_by_remediation=False, value=_jsonable(m.value),
                                                   subject_label=m.label[:200])
                events.append(AlertEvent(alert_id=pk, at=now, kind="reopened", detail={"value": _jsonable(m.value)}))
                if fire_now:
                    to_fire.append(pk)
            else:
                pk = uuid.uuid4()
                created.append((pk, rule.pk, kind.subject, sid, m.label[:200], A.FIRING if fire_now else A.PENDING,
                                rule.severity, _jsonable(m.value), now, now if fire_now else None, int(fire_now),
                                flaps_at_once, m.group[:100], now))
                if fire_now:  # a pending alert has no event: `since` says when it started
                    created_events.append((pk, now, "fired", {}))
                    if flaps_at_once:
                        created_events.append((pk, now, "flapping", {}))
        if created:
            sql.copy_rows(Alert, ["id", "rule_id", "subject_type", "subject_id", "subject_label", "state", "severity",
                                  "value", "since", "fired_at", "fire_count", "flapping", "group_name", "updated_at"],
                          created)
            sql.copy_rows(AlertEvent, ["alert_id", "at", "kind", "detail"], created_events)
            if fire_now:
                out.fired += [row[0] for row in created]
                if flaps_at_once:
                    out.started_flapping += [row[0] for row in created]
        out.opened = len(created) + len(reopen)
        # Open subjects.
        drop, start_clearing, resolve = [], [], []
        for sid, (pk, state, since, clear_since) in open_rows.items():
            if sid in matches:
                if state == A.PENDING and now - since >= hold:
                    to_fire.append(pk)
                elif state == A.FIRING and clear_since is not None:
                    back.append(pk)
            elif state == A.PENDING:
                drop.append(pk)
            elif clear_since is None and rule.clear_s > 0:
                start_clearing.append(pk)
            elif clear_since is None or now - clear_since >= timedelta(seconds=rule.clear_s):
                resolve.append(pk)
        if drop:
            # Never fired: gone without a trace. A re-opened row that had fired before goes back
            # to resolved, keeping its history.
            Alert.objects.filter(pk__in=drop, state=A.PENDING, fire_count=0).delete()
            Alert.objects.filter(pk__in=drop, state=A.PENDING).update(state=A.RESOLVED, resolved_at=now)
        if back:
            Alert.objects.filter(pk__in=back).update(clear_since=None)
        if start_clearing:
            Alert.objects.filter(pk__in=start_clearing).update(clear_since=now)
        if resolve:
            Alert.objects.filter(pk__in=resolve).update(state=A.RESOLVED, resolved_at=now, clear_since=None)
            events += _events(resolve, "resolved", now)
            out.resolved = resolve
        if to_fire:
            Alert.objects.filter(pk__in=to_fire).update(state=A.FIRING, fired_at=now, clear_since=None,
                                                        fire_count=F("fire_count") + 1)
            flapping = dict(Alert.objects.filter(pk__in=to_fire, fire_count__gte=flap_fires())
                            .values_list("pk", "flapping"))
            newly = [pk for pk, was in flapping.items() if not was]
            if newly:
                Alert.objects.filter(pk__in=newly).update(flapping=True)
                events += _events(newly, "flapping", now)
            events += _events(to_fire, "fired", now)
            # A flapping alert is told once (when it starts to flap), not at each fire.
            out.fired += [pk for pk in to_fire if pk not in flapping or pk in newly]
            out.started_flapping += newly
        AlertEvent.objects.bulk_create(events, batch_size=2000)
    return out


def _reopen_portable(rule, subjects, now) -> dict:
    found = {}
    for pk, sid in (Alert.objects.filter(rule=rule, state=A.RESOLVED, subject_id__in=subjects,
                                         resolved_at__gte=now - flap_window())
                    .order_by("resolved_at").values_list("pk", "subject_id")):
        found[sid] = pk  # the newest wins
    return found


def _postgres() -> bool:
    from django.db import connection
    return connection.vendor == "postgresql"


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return str(value)


def evaluate_all(now: datetime, *, kinds=None) -> list[Outcome]:
    """Every enabled rule (or those of the given kinds), one after the other. A rule whose
    evaluation fails is logged and skipped (its own transaction rolled back), never the rules
    after it: one broken rule must not silence the fleet's alerting."""
    rules = AlertRule.objects.filter(enabled=True)
    if kinds is not None:
        rules = rules.filter(kind__in=list(kinds))
    outcomes = []
    for rule in rules:
        if rule.kind in KINDS:
            try:
                outcomes.append(evaluate_rule(rule, now))
            except Exception as exc:
                logger.exception("alert rule %s (%s) could not be evaluated", rule.pk, rule.kind)
                _mark_failing(rule, now, exc)
            else:
                if rule.failing_since is not None:
                    _mark_working(rule)
    return outcomes


def failure_text(exc: BaseException) -> str:
    """The error in one line for the console: its type and the first line of its message (a
    database error's detail lines, which may quote row values, stay in the log)."""
    first = next(iter(str(exc).splitlines()), "")
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text.loggable(line)[:300]  # the column's length, escapes included


def _mark_failing(rule: AlertRule, now: datetime, exc: BaseException) -> None:
    """The rule's row says it fails (since the first failure of this run of failures) and why:
    the console shows it and `server_rule_failing` tells the admins. Best effort: the database
    may be what failed, and the log has it either way."""
    metrics.ALERT_RULE_FAILURES.labels(kind=rule.kind).inc()
    try:
        AlertRule.objects.filter(pk=rule.pk).update(failure=failure_text(exc),
                                                    failing_since=Coalesce(F("failing_since"), Value(now)))
    except Exception:
        logger.exception("alert rule %s could not be marked failing", rule.pk)


def _mark_working(rule: AlertRule) -> None:
    try:
        AlertRule.objects.filter(pk=rule.pk, failing_since__isnull=False).update(failing_since=None, failure="")
    except Exception:
        logger.exception("alert rule %s could not be marked working again", rule.pk)


def by_rule(outcomes) -> dict:
    grouped = defaultdict(list)
    for o in outcomes:
        grouped[o.rule.pk].append(o)
    return grouped
