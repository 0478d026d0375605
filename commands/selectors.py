"""Reusable reads for pages and the API (no state changes)."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import django_filters
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from commands.models import FINAL_STATES, NON_FINAL_STATES, Command, CommandType, Delivery, DeliveryState
from mdm.filters import UtcIsoDateTimeFilter


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
    command = Command.objects.filter(pk=command_id).select_related("preset", "wifi_config").first()
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
        )
        .order_by("device__hardware_id")
    )
    if pks is not None:
        qs = qs.filter(pk__in=pks)
    if state:
        qs = qs.filter(state=state)
    return list(qs[:limit] if limit else qs)


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
