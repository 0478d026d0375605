"""The fleet as a whole, for the dashboard: how much of it was online over time, and how it spreads
over OS versions, security patch age, agent versions and battery level.

"Online over time" cannot come from the heartbeat history: at 20,000 devices that is millions of
rows a day. The offline sweep counts the fleet every 15 s anyway (for the online gauge), so it
also keeps one `FleetSample` per 5 minutes: 288 rows a day whatever the fleet's size, pruned past
KEEP by the same write. The spreads are each one SQL aggregate over the status rows, never a loop
over devices."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Avg, Count, Max, Q, Value
from django.db.models.functions import Coalesce, NullIf, Trunc
from django.utils import timezone

from devices.models import FleetSample

SAMPLE_EVERY = timedelta(minutes=5)
KEEP = timedelta(days=31)
TOP = 6  # rows of a version spread; the rest is one "other versions" row
LOW_BATTERY_PCT = 20  # as devices.selectors: the dashboard's "battery below 20%" card


def bucket_of(at: datetime) -> datetime:
    step = int(SAMPLE_EVERY.total_seconds())
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, tz=UTC)


def record_sample(*, now: datetime, total: int, online: int) -> None:
    """The fleet's counts for the 5-minute bucket `now` falls in: the first sweep of a bucket writes
    it, the later ones of the same bucket change nothing (ON CONFLICT DO NOTHING on the key)."""
    bucket = bucket_of(now)
    FleetSample.objects.bulk_create([FleetSample(at=bucket, total=total, online=online)], ignore_conflicts=True)
    FleetSample.objects.filter(at__lt=bucket - KEEP).delete()  # the primary key's range: none most times


@dataclass(frozen=True)
class Point:
    at: datetime
    online: int
    total: int


def online_series(*, start: datetime, end: datetime, hourly: bool) -> list[Point]:
    """The samples between start and end, oldest first; hourly: one point per hour (the hour's
    average online, its largest fleet), for ranges of days."""
    samples = FleetSample.objects.filter(at__gte=start, at__lt=end)
    if not hourly:
        return [Point(s.at, s.online, s.total) for s in samples.order_by("at")]
    rows = (samples.annotate(hour=Trunc("at", "hour", tzinfo=UTC)).values("hour")
            .annotate(online=Avg("online"), total=Max("total")).order_by("hour"))
    return [Point(r["hour"], round(r["online"]), r["total"]) for r in rows]


@dataclass(frozen=True)
class Share:
    label: str
    count: int
    percent: int
    link: str = ""  # a devices-list query showing exactly these devices, when one exists


def _shares(rows: list[tuple[str, int, str]], total: int) -> list[Share]:
    return [Share(label, n, round(100 * n / total) if total else 0, link) for label, n, link in rows if n]


def _top(devices, total: int, missing: int) -> list[Share]:
    """The TOP most common values of `v` (annotated on devices), one row for the rest, and one
    for the devices that report none."""
    rows = devices.exclude(v="").values("v").annotate(n=Count("pk")).order_by("-n", "v")[:TOP]
    shown = [(r["v"], r["n"], "") for r in rows]
    other = total - missing - sum(n for _, n, _ in shown)
    return _shares([*shown, ("other versions", other, ""), ("not reported", missing, "")], total)


def _os_version():
    """The OS version a v1.1 agent reports, else the Android version the device enrolled with."""
    return Coalesce(NullIf("status__os_version", Value("")), NullIf("android_version", Value("")), Value(""))


def _agent_version():
    return Coalesce("status__agent_version", Value(""))


def spreads(devices, *, today=None) -> dict[str, list[Share]]:
    """OS versions, security patch age, agent versions and battery level of `devices` (a scoped
    queryset of active devices): four short lists of Share, from three queries."""
    today = today or timezone.localdate()
    patch, battery = "status__security_patch", "status__battery_pct"
    n = devices.annotate(os_v=_os_version(), agent_v=_agent_version()).aggregate(
        total=Count("pk"),
        os_missing=Count("pk", filter=Q(os_v="")),
        agent_missing=Count("pk", filter=Q(agent_v="")),
        patch_30=Count("pk", filter=Q(**{f"{patch}__gte": today - timedelta(days=30)})),
        patch_90=Count("pk", filter=Q(**{f"{patch}__gte": today - timedelta(days=90), f"{patch}__lt": today - timedelta(days=30)})),
        patch_old=Count("pk", filter=Q(**{f"{patch}__lt": today - timedelta(days=90)})),
        battery_low=Count("pk", filter=Q(**{f"{battery}__lt": LOW_BATTERY_PCT})),
        battery_mid=Count("pk", filter=Q(**{f"{battery}__gte": LOW_BATTERY_PCT, f"{battery}__lt": 50})),
        battery_good=Count("pk", filter=Q(**{f"{battery}__gte": 50, f"{battery}__lt": 80})),
        battery_full=Count("pk", filter=Q(**{f"{battery}__gte": 80})),
    )
    total = n["total"]
    patches = n["patch_30"] + n["patch_90"] + n["patch_old"]
    batteries = n["battery_low"] + n["battery_mid"] + n["battery_good"] + n["battery_full"]
    return {
        "os": _top(devices.annotate(v=_os_version()), total, n["os_missing"]),
        "agent": _top(devices.annotate(v=_agent_version()), total, n["agent_missing"]),
        "patch": _shares([
            ("30 days old or newer", n["patch_30"], ""),
            ("31 to 90 days old", n["patch_90"], ""),
            ("older than 90 days", n["patch_old"], "?patch_older_than_days=90"),
            ("not reported", total - patches, ""),
        ], total),
        "battery": _shares([
            (f"below {LOW_BATTERY_PCT}%", n["battery_low"], f"?battery_below={LOW_BATTERY_PCT}"),
            (f"{LOW_BATTERY_PCT} to 49%", n["battery_mid"], ""),
            ("50 to 79%", n["battery_good"], ""),
            ("80% and above", n["battery_full"], "?battery_above=79"),
            ("not reported", total - batteries, ""),
        ], total),
    }
