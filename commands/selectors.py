"""Reusable reads for pages and the API (no state changes)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import django_filters
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from commands.models import FINAL_STATES, NON_FINAL_STATES, Command, CommandType, Delivery, DeliveryState
from mdm.filters import UtcIsoDateTimeFilter

# What "retry failed" sends again: the device failed or refused it, or it expired undelivered.
RETRY_STATES = (DeliveryState.FAILED, DeliveryState.REJECTED, DeliveryState.EXPIRED)


def counters_for(command_ids) -> dict:
    """{command_id: {state: n, ..., "total": n}} in one grouped query."""
    S = DeliveryState
    out: dict = {cid: {s: 0 for s in S.values} | {"total": 0} for cid in command_ids}
    rows = Delivery.objects.filter(command_id__in=list(command_ids)).values("command_id", "state").annotate(n=Count("pk"))
    for row in rows:
        c = out.setdefault(row["command_id"], {s: 0 for s in S.values} | {"total": 0})
        c[row["state"]] = row["n"]
        c["total"] += row["n"]
    for c in out.values():
        c["done"] = sum(c[s] for s in FINAL_STATES)
        c["pending"] = c["total"] - c["done"]
        c["percent"] = round(100 * c["done"] / c["total"]) if c["total"] else 0
    return out


def command_with_counters(command_id) -> Command | None:
    command = Command.objects.filter(pk=command_id).select_related("preset", "wifi_config", "retry_of").first()
    if command is not None:
        command.counters = counters_for([command.pk])[command.pk]
    return command


def attach_counters(commands) -> list[Command]:
    commands = list(commands)
    counters = counters_for([c.pk for c in commands])
    for c in commands:
        c.counters = counters[c.pk]
    return commands


def delivery_rows(command_id, *, pks=None, state: str | None = None, limit: int | None = None):
    qs = (
        Delivery.objects.filter(command_id=command_id)
        .select_related("device")
        .only(
            "pk", "seq", "state", "sent_at", "received_at", "running_at", "finished_at", "exit_code", "output",
            "output_truncated", "error", "reason", "attempts", "channel", "push_status", "queued_at", "command_id",
            "device__id", "device__alias", "device__model", "device__manufacturer", "device__hardware_id",
            "device__deleted_at",
        )
        .order_by("device__hardware_id")
    )
    if pks is not None:
        qs = qs.filter(pk__in=pks)
    if state:
        qs = qs.filter(state=state)
    return list(qs[:limit] if limit else qs)


def retry_candidates(command_id) -> dict:
    """What "retry failed" would do, in one grouped query: {"failed": n, "expired": n} of the
    deliveries it sends again (failed or rejected, expired), on devices not deleted, and
    {"deleted": n} of those it skips because their device was deleted."""
    out = {"failed": 0, "expired": 0, "deleted": 0}
    rows = (
        Delivery.objects.filter(command_id=command_id, state__in=RETRY_STATES)
        .annotate(deleted=ExpressionWrapper(Q(device__deleted_at__isnull=False), output_field=BooleanField()))
        .values("state", "deleted")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        if row["deleted"]:
            out["deleted"] += row["n"]
        elif row["state"] == DeliveryState.EXPIRED:
            out["expired"] += row["n"]
        else:
            out["failed"] += row["n"]
    out["devices"] = out["failed"] + out["expired"]
    return out


def retry_device_ids(command_id) -> list:
    """The devices "retry failed" sends the command to again (retry_candidates' "devices")."""
    return list(
        Delivery.objects.filter(command_id=command_id, state__in=RETRY_STATES, device__deleted_at__isnull=True)
        .order_by("device_id")
        .values_list("device_id", flat=True)
    )


def deleted_targets(command_id) -> int:
    """How many of the command's devices were deleted since (their results are kept)."""
    return Delivery.objects.filter(command_id=command_id, device__deleted_at__isnull=False).count()


class CommandFilter(django_filters.FilterSet):
    """One FilterSet for the console history and the API list."""

    type = django_filters.ChoiceFilter(choices=CommandType.choices)
    status = django_filters.ChoiceFilter(
        choices=[("active", "Active"), ("finished", "Finished"), ("cancelled", "Cancelled")], method="filter_status"
    )
    issuer = django_filters.CharFilter(field_name="issuer_label", lookup_expr="icontains")
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    device = django_filters.UUIDFilter(method="filter_device", label="Device id")
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Command
        fields = ["type", "status", "issuer", "created_after", "created_before", "device", "q"]

    def filter_status(self, queryset, name, value):
        if value == "cancelled":
            return queryset.filter(cancelled_at__isnull=False)
        live = Delivery.objects.filter(state__in=["queued", "sent", "received", "running"]).values("command_id")
        if value == "active":
            return queryset.filter(cancelled_at__isnull=True, pk__in=live)
        return queryset.filter(cancelled_at__isnull=True).exclude(pk__in=live)

    def filter_device(self, queryset, name, value):
        return queryset.filter(pk__in=Delivery.objects.filter(device_id=value).values("command_id"))

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(type__icontains=value) | Q(issuer_label__icontains=value) | Q(preset__name__icontains=value))


STATE_ORDER = [s for s in DeliveryState.values]


def device_deliveries(device_id):
    """The commands one device received, newest first, with its own state of each: the device's
    page pages through it (the (device, seq) unique index serves the order and the count)."""
    return (
        Delivery.objects.filter(device_id=device_id)
        .select_related("command", "command__preset")
        .only(
            "pk", "seq", "state", "reason", "exit_code", "error", "output", "queued_at", "finished_at", "command__id",
            "command__type", "command__params", "command__is_secret", "command__created_at", "command__issuer_label",
            "command__target_count", "command__preset__name", "command__preset_version", "command__preset",
        )
        .order_by("-seq")
    )


@dataclass(frozen=True)
class Day:
    """What became of the deliveries of the commands issued on one day."""

    day: date
    commands: int = 0
    succeeded: int = 0
    failed: int = 0  # failed on the device, or refused by it
    expired: int = 0
    cancelled: int = 0
    pending: int = 0  # not finished yet

    @property
    def deliveries(self) -> int:
        return self.succeeded + self.failed + self.expired + self.cancelled + self.pending

    @property
    def finished(self) -> int:
        """Deliveries with an outcome (a cancelled one has none: someone chose to stop it)."""
        return self.succeeded + self.failed + self.expired


def daily_results(*, days: int, today: date | None = None) -> list[Day]:
    """The commands issued on each of the last `days` days (today included, in TIME_ZONE) and the
    states of their deliveries, oldest first. Two grouped queries: the commands per day (the
    created_at index), and their deliveries per day and state (a hash join and a hash aggregate:
    no DISTINCT, which would sort every delivery). The second reads every delivery of the window,
    so its cost follows the fleet's activity (280,000 deliveries: about 0.1 s); the dashboard
    keeps the answer for a minute (mdm.dashboard)."""
    S = DeliveryState
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    commands = dict(Command.objects.filter(created_at__gte=since).annotate(day=TruncDate("created_at"))
                    .values("day").annotate(n=Count("pk")).values_list("day", "n"))
    outcome = {S.SUCCEEDED: "succeeded", S.FAILED: "failed", S.REJECTED: "failed", S.EXPIRED: "expired",
               S.CANCELLED: "cancelled", **{s: "pending" for s in NON_FINAL_STATES}}
    counts: dict = {}
    rows = (Delivery.objects.filter(command__created_at__gte=since).annotate(day=TruncDate("command__created_at"))
            .values("day", "state").annotate(n=Count("pk")).values_list("day", "state", "n"))
    for day, state, n in rows:  # at most days x 9 states
        key = (day, outcome[state])
        counts[key] = counts.get(key, 0) + n
    fields = ("succeeded", "failed", "expired", "cancelled", "pending")
    return [Day(day=d, commands=commands.get(d, 0), **{f: counts.get((d, f), 0) for f in fields})
            for d in (first + timedelta(days=i) for i in range(days))]
