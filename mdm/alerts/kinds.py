"""The built-in rule kinds (docs/alerts.md): each is a condition evaluated as one set-based query
over what the fleet and the server report, returning the subjects for which it holds now.

`Kind.matches(rule, now)` -> {subject id: Match(label, value, group)}. The evaluator
(mdm.alerts.evaluate) turns those sets into alerts with hold and clear times; nothing here keeps
state, so every kind is cheap to evaluate over 20,000 devices (an indexed scan and a projection)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, F, Min, Q

from apks.models import Rollout
from commands import targeting
from commands.models import Command, Delivery, DeliveryState
from commands.params import ParamsError
from commands.policies.models import Policy
from devices import compliance
from devices.models import Device, DeviceStatus
from mdm import deadletters, redis_client
from mdm.alerts.models import Alert, AlertRule, Severity
from mdm.formfields import figure

S = Alert.Subject


@dataclass(frozen=True)
class Match:
    label: str
    value: object = None
    group: str = ""


@dataclass(frozen=True)
class Param:
    label: str  # in the user's terms, with its unit
    type: type
    default: float
    min: float
    max: float


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    subject: str
    params: dict[str, Param]
    severity: str
    hold_s: int
    clear_s: int
    describe: Callable[[dict], str]  # the condition in words, for notifications and the console
    matches: Callable[["object", datetime], dict[str, Match]] = field(repr=False, default=None)
    # For a condition that starts holding at a time known in advance (offline: last_seen + N):
    # when the next subject will start matching, so the evaluator looks then, not at the next sweep.
    next_change: Callable[["object", datetime], datetime | None] | None = field(repr=False, default=None)


def _scoped_statuses(rule):
    """The status rows of the active devices in the rule's scope (device kinds). Deleted devices
    are few: an anti-join on them keeps the scan on the status table alone."""
    statuses = DeviceStatus.objects.exclude(device_id__in=Device.objects.filter(deleted_at__isnull=False).values("id"))
    if rule.scope and not rule.scope.get("all"):
        try:
            devices = targeting.resolve(targeting.normalize(rule.scope))
        except ParamsError:
            return statuses.none()  # a scope naming a group since deleted selects nothing
        statuses = statuses.filter(device__in=devices.values("id"))
    return statuses


def _device_matches(rows) -> dict[str, Match]:
    """rows of (device id, value). Labels and groups are read by the evaluator for the subjects
    that open an alert only (device_labels), not for every match of every cycle."""
    return {str(d): Match("", value) for d, value in rows}


def _project(statuses, value):
    return statuses.values_list("device_id", value)


def device_labels(device_ids) -> dict[str, tuple[str, str]]:
    """{device id: (alias or hardware id, group name)} in one query."""
    rows = Device.objects.filter(id__in=list(device_ids)).values_list("id", "alias", "hardware_id", "group__name")
    return {str(i): (alias or hw, group or "") for i, alias, hw, group in rows}


def _offline(rule, now):
    since = now - timedelta(minutes=rule.params["minutes"])
    return _device_matches(_project(_scoped_statuses(rule).filter(last_seen__lt=since), "last_seen"))


def _offline_next(rule, now):
    """When the device silent longest among those still within N minutes will have been silent N
    minutes: one index read (devices_devicestatus.last_seen)."""
    span = timedelta(minutes=rule.params["minutes"])
    earliest = _scoped_statuses(rule).filter(last_seen__gte=now - span).aggregate(m=Min("last_seen"))["m"]
    return earliest + span if earliest is not None else None


def _reporting(rule, now):
    """Devices heard from recently: telemetry conditions judge only fresh values (a device that
    went quiet is the offline rule's business, not a stale 3% battery's)."""
    return _scoped_statuses(rule).filter(online=True)


def _battery_low(rule, now):
    q = _reporting(rule, now).filter(battery_pct__lt=rule.params["percent"]).exclude(charging=True)
    return _device_matches(_project(q, "battery_pct"))


def _storage_low(rule, now):
    # free * 100 < total * percent, in integers: no division, NULLs fall out
    q = _reporting(rule, now).filter(storage_total_mb__gt=0).annotate(
        limit=F("storage_total_mb") * rule.params["percent"]).filter(limit__gt=F("storage_free_mb") * 100)
    return _device_matches(_project(q, "storage_free_mb"))


def _battery_hot(rule, now):
    q = _reporting(rule, now).filter(battery_temp_c__gt=rule.params["celsius"])
    return _device_matches(_project(q, "battery_temp_c"))


def _bad_envelopes(rule, now):
    since = now - timedelta(minutes=rule.params["minutes"])
    q = _scoped_statuses(rule).filter(last_bad_envelope_at__gte=since)
    return _device_matches(_project(q, "bad_envelopes_total"))


def _clock_drift(rule, now):
    n = rule.params["seconds"]
    q = _reporting(rule, now).filter(Q(clock_drift_s__gt=n) | Q(clock_drift_s__lt=-n))
    return _device_matches(_project(q, "clock_drift_s"))


def _noncompliant(rule, now):
    q = _scoped_statuses(rule).filter(compliance.has_policy_q("device__policy_state__")).exclude(
        compliance.compliant_q("device__policy_state__"))
    return _device_matches(_project(q, "device__policy_state__applied_version"))


def kiosk_packages() -> dict:
    """{policy id: the kiosk package of its current version} for policies that have one."""
    rows = Policy.objects.filter(current__isnull=False).values_list("id", "current__items")
    return {p: items["kiosk"]["package"] for p, items in rows if isinstance(items, dict) and items.get("kiosk")}


def _kiosk_not_in_front(rule, now):
    """Devices whose policy has a kiosk and whose foreground app is another one (an unknown
    foreground app, without usage access, is not judged: the v1.1 flags report that)."""
    kiosk = kiosk_packages()
    if not kiosk:
        return {}
    rows = (_reporting(rule, now).filter(device__policy_state__policy_id__in=list(kiosk)).exclude(foreground_app="")
            .values_list("device_id", "foreground_app", "device__policy_state__policy_id"))
    return {str(d): Match("", fg) for d, fg, p in rows if fg != kiosk[p]}


def _patch_old(rule, now):
    before = (now - timedelta(days=rule.params["days"])).date()
    q = _reporting(rule, now).filter(security_patch__lt=before)
    return _device_matches(_project(q, "security_patch"))


FAILED = (DeliveryState.FAILED, DeliveryState.REJECTED, DeliveryState.EXPIRED)
RESULTS = (DeliveryState.SUCCEEDED, *FAILED)


def _command_failures(rule, now):
    p = rule.params
    since = now - timedelta(hours=p["hours"])
    rows = (Delivery.objects.filter(command__created_at__gte=since, state__in=RESULTS)
            .values("command_id").annotate(results=Count("pk"), failed=Count("pk", filter=Q(state__in=FAILED)))
            .filter(results__gte=p["min_results"]))
    hits = {r["command_id"]: r for r in rows if r["failed"] * 100 > r["results"] * p["percent"]}
    labels = dict(Command.objects.filter(id__in=list(hits)).values_list("id", "type"))
    return {str(c): Match(f"{labels.get(c, 'command')} {str(c)[:8]}", {"failed": r["failed"], "results": r["results"]})
            for c, r in hits.items()}


def _rollout_halted(rule, now):
    rows = Rollout.objects.filter(state=Rollout.State.HALTED).values_list("id", "release__package", "reason")
    return {str(i): Match(f"rollout of {package}", reason) for i, package, reason in rows}


SERVER = "server"


def _server(label: str, value) -> dict[str, Match]:
    return {SERVER: Match(label, value)}


def _dead_letters(rule, now):
    n = deadletters.count()
    return _server("the server", n) if n > 0 else {}


def _push_failures(rule, now):
    since = now - timedelta(minutes=rule.params["minutes"])
    n = Delivery.objects.filter(push_status=Delivery.Push.FAILED, queued_at__gte=since).count()
    return _server("the server", n) if n >= rule.params["count"] else {}


def queue_depth() -> int:
    """Messages waiting in the Celery broker's default queue (0 without a Redis broker)."""
    client = redis_client.client()
    if client is None or not str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("redis"):
        return 0
    return int(client.llen(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")))


def _queue_depth(rule, now):
    n = queue_depth()
    return _server("the server", n) if n > rule.params["count"] else {}


def worker_seen_key() -> str:
    return f"{settings.CACHE_PREFIX}:alerts:worker_seen"


def _worker_silent(rule, now):
    client = redis_client.client()
    if client is None:
        return {}  # the embedded default runs tasks in-process: no worker to lose
    seen = client.get(worker_seen_key())
    age = now.timestamp() - float(seen) if seen else None
    if age is None or age > rule.params["seconds"]:
        return _server("the server", None if age is None else int(age))
    return {}


def _rules_failing(rule, now):
    """Every enabled rule whose evaluation fails (mdm.alerts.evaluate marks it), itself aside: a
    rule that cannot be evaluated would otherwise stay silent about what it watches."""
    rows = (AlertRule.objects.filter(enabled=True, failing_since__isnull=False).exclude(pk=rule.pk)
            .values_list("pk", "name", "failure"))
    return {str(pk): Match(name, failure) for pk, name, failure in rows}


def _p(label, type_, default, lo, hi):
    return Param(label, type_, default, lo, hi)


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("device_offline", "Device offline", S.DEVICE, {"minutes": _p("offline for (minutes)", int, 10, 1, 10080)},
         Severity.WARNING, 0, 0, lambda p: f"offline for {p['minutes']} min", _offline, _offline_next),
    Kind("battery_low", "Battery low", S.DEVICE, {"percent": _p("battery under (%)", int, 15, 1, 100)},
         Severity.WARNING, 120, 300, lambda p: f"battery under {p['percent']}% and not charging", _battery_low),
    Kind("storage_low", "Storage low", S.DEVICE, {"percent": _p("free storage under (%)", int, 10, 1, 99)},
         Severity.WARNING, 300, 600, lambda p: f"free storage under {p['percent']}%", _storage_low),
    Kind("battery_hot", "Battery hot", S.DEVICE, {"celsius": _p("battery over (°C)", float, 45, 20, 90)},
         Severity.WARNING, 120, 300, lambda p: f"battery over {p['celsius']:g} °C", _battery_hot),
    Kind("bad_envelopes", "Bad command envelopes", S.DEVICE,
         {"minutes": _p("seen within (minutes)", int, 15, 1, 1440)},
         Severity.CRITICAL, 0, 0, lambda p: "rejected a command envelope (a forged command or a key mismatch)", _bad_envelopes),
    Kind("clock_drift", "Clock drift", S.DEVICE, {"seconds": _p("drift over (seconds)", int, 300, 5, 86400)},
         Severity.INFO, 600, 600, lambda p: f"clock off by more than {p['seconds']} s", _clock_drift),
    Kind("policy_noncompliant", "Not compliant with its policy", S.DEVICE, {},
         Severity.WARNING, 1800, 60, lambda p: "not compliant with its policy", _noncompliant),
    Kind("kiosk_not_in_front", "Kiosk app not in front", S.DEVICE, {},
         Severity.WARNING, 120, 30, lambda p: "its kiosk app is not in the foreground", _kiosk_not_in_front),
    Kind("security_patch_old", "Security patch old", S.DEVICE, {"days": _p("patch older than (days)", int, 90, 1, 3650)},
         Severity.INFO, 0, 0, lambda p: f"security patch older than {p['days']} days", _patch_old),
    Kind("command_failure_rate", "Command failure rate", S.COMMAND, {
        "percent": _p("failed over (%)", int, 20, 1, 100),
        "min_results": _p("after at least (results)", int, 10, 1, 100000),
        "hours": _p("commands issued within (hours)", int, 24, 1, 720)},
        Severity.WARNING, 0, 0, lambda p: f"more than {p['percent']}% of its results failed", _command_failures),
    Kind("rollout_halted", "Staged rollout halted", S.ROLLOUT, {},
         Severity.CRITICAL, 0, 0, lambda p: "halted by its failure threshold", _rollout_halted),
    Kind("server_dead_letters", "Write-behind dead letters", S.SERVER, {},
         Severity.CRITICAL, 0, 0, lambda p: "device data set aside that could not be written (see Operations)", _dead_letters),
    Kind("server_push_failures", "Push failures", S.SERVER, {
        "count": _p("failed pushes (count)", int, 50, 1, 1000000), "minutes": _p("within (minutes)", int, 10, 1, 1440)},
        Severity.WARNING, 0, 300, lambda p: f"{p['count']} or more pushes failed within {p['minutes']} min", _push_failures),
    Kind("server_queue_depth", "Task queue depth", S.SERVER, {"count": _p("queued tasks over", int, 1000, 1, 10000000)},
         Severity.WARNING, 120, 120, lambda p: f"more than {p['count']} tasks waiting for a worker", _queue_depth),
    Kind("server_worker_silent", "Worker not heard from", S.SERVER, {"seconds": _p("silent for (seconds)", int, 180, 30, 86400)},
         Severity.CRITICAL, 0, 60, lambda p: f"no worker heard from for {p['seconds']} s", _worker_silent),
    # Held 5 minutes: one failed evaluation (a deadlock, a restart) is not news; a rule that keeps
    # failing watches nothing.
    Kind("server_rule_failing", "Alert rule failing", S.RULE, {},
         Severity.CRITICAL, 300, 60, lambda p: "cannot be evaluated: its condition is not being watched", _rules_failing),
)}


def clean_params(kind: Kind, raw) -> dict:
    """The kind's params with defaults filled in, or ParamsError naming the field in user terms."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamsError({"params": ["Must be an object."]})
    unknown = sorted(set(raw) - set(kind.params))
    if unknown:
        raise ParamsError({"params": [f"Unknown for {kind.label}: {', '.join(unknown)}."]})
    cleaned, errors = {}, {}
    for name, p in kind.params.items():
        value = raw.get(name, p.default)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = p.type(value)
            if p.type is int and number != float(value):
                raise ValueError
        except (TypeError, ValueError):
            errors[f"params.{name}"] = [f"{p.label}: a number."]
            continue
        if not p.min <= number <= p.max:
            errors[f"params.{name}"] = [f"{p.label}: from {figure(p.min)} to {figure(p.max)}."]
            continue
        cleaned[name] = number
    if errors:
        raise ParamsError(errors)
    return cleaned
