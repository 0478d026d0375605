"""Reading the audit log: one FilterSet for the console page, its CSV export and GET
/api/v1/audit; pages newest first by keyset (no COUNT, no OFFSET: both grow with the table); the
CSV rows, fetched in batches the same way.

Every filter is answered newest first from an index (mdm.models.AuditEvent): the time range from
the one on `at`, the action from (action, at DESC), the object from (target_type, target_id, at
DESC). The free-text search reads each row's data as text, so it is kept to a time range: the
SEARCH_DAYS days before `until` (or now) unless `since` says otherwise."""

import base64
import contextlib
import csv
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import django_filters
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mdm.filters import UtcIsoDateTimeFilter
from mdm.models import AuditEvent

SEARCH_DAYS = 30
TEXT = {"max_length": 200}
CSV_CAP = 100_000
CSV_BATCH = 2_000
CSV_COLUMNS = ("at", "actor", "action", "target_type", "target_id", "ip", "data")


class AuditFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(method="filter_actor", label="Who", help_text="Part of the actor's label or username.", **TEXT)
    action = django_filters.CharFilter(
        method="filter_action", label="Action", help_text='An action ("policy.create"), or a prefix ending in "." ("policy.").', **TEXT
    )
    target_type = django_filters.CharFilter(field_name="target_type", label="Object type", **TEXT)
    target_id = django_filters.CharFilter(field_name="target_id", label="Object id", **TEXT)
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte", label="From", help_text="ISO 8601; inclusive.")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt", label="To", help_text="ISO 8601; exclusive.")
    q = django_filters.CharFilter(
        method="search",
        label="Search",
        help_text=f"Text in the actor, action, object id or data; within the {SEARCH_DAYS} days before `until` (or now) unless `since` is given.",
        **TEXT,
    )

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target_type", "target_id", "since", "until", "q"]

    def filter_actor(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(actor_label__icontains=value) | Q(actor__username__icontains=value))

    def filter_action(self, queryset, name, value):
        value = value.strip()
        if value.endswith((".", "*")):
            return queryset.filter(action__startswith=value.rstrip("*"))
        return queryset.filter(action=value) if value else queryset

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        if self.form.cleaned_data.get("since") is None:
            end = self.form.cleaned_data.get("until") or timezone.now()
            with contextlib.suppress(OverflowError):  # `until` in year 1: nothing before it to leave out
                queryset = queryset.filter(at__gte=end - timedelta(days=SEARCH_DAYS))
        return queryset.alias(data_text=Cast("data", TextField())).filter(
            Q(actor_label__icontains=value) | Q(action__icontains=value) | Q(target_id__icontains=value) | Q(data_text__icontains=value)
        )


# --- Pages, newest first ------------------------------------------------------------------------
class InvalidCursor(ValueError):
    pass


@dataclass
class Page:
    events: list
    next_cursor: str | None


def _encode(at: datetime, pk) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def instant(text: str) -> datetime:
    """A cursor's date-time, aware and in UTC: PostgreSQL refuses offsets past ±15:59 (a 500
    otherwise). ValueError for anything else."""
    try:
        at = parse_datetime(text)
        if at is None or at.tzinfo is None:
            raise ValueError(text)
        return at.astimezone(UTC)
    except OverflowError as exc:  # past year 9999 (or before year 1) in UTC
        raise ValueError(text) from exc


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, pk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return instant(at), uuid.UUID(pk)
    except ValueError as exc:  # bad base64, bad UTF-8, no "|", a bad date or UUID
        raise InvalidCursor("This page link is not valid: start again from the newest events.") from exc


def _after(queryset, position: tuple[datetime, uuid.UUID] | None):
    queryset = queryset.order_by("-at", "-id")
    if position is None:
        return queryset
    at, pk = position
    # `at <= X` first: the range PostgreSQL walks on the index of `at`; the id breaks ties.
    return queryset.filter(at__lte=at).filter(Q(at__lt=at) | Q(id__lt=pk))


def newest_first(queryset, *, cursor: str | None, size: int) -> Page:
    """One page of events older than the cursor (the first page without one). Raises
    InvalidCursor for a cursor this function did not make."""
    events = list(_after(queryset, _decode(cursor) if cursor else None)[: size + 1])
    more = len(events) > size
    events = events[:size]
    return Page(events=events, next_cursor=_encode(events[-1].at, events[-1].pk) if more else None)


# --- CSV ----------------------------------------------------------------------------------------
class _Line:
    """csv.writer's file: hands back the line it was given."""

    def write(self, value):
        return value


def _cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); the
    # actor, object id and data can hold what a device sent.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(at, actor, action, target_type, target_id, ip, data) -> list[str]:
    data_text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return [at.isoformat(), *(_cell(v) for v in (actor, action, target_type, target_id)), ip or "", _cell(data_text)]


def csv_batches(queryset):
    """Lists of CSV lines, the header first, then at most CSV_CAP events newest first, CSV_BATCH
    per query (each batch starts after the last one: no server-side cursor, no long query)."""
    cap = CSV_CAP
    writer = csv.writer(_Line())
    yield [writer.writerow(CSV_COLUMNS)]
    sent, position = 0, None
    fields = ("at", "actor_label", "action", "target_type", "target_id", "ip", "data", "id")
    while sent < cap:
        rows = list(_after(queryset, position).values_list(*fields)[: min(CSV_BATCH, cap - sent)])
        if not rows:
            return
        yield [writer.writerow(_row(*row[:-1])) for row in rows]
        sent += len(rows)
        position = (rows[-1][0], rows[-1][-1])


def exceeds_cap(queryset) -> bool:
    """Whether more than CSV_CAP events match (the export stops at the cap)."""
    return queryset.order_by().values("pk")[CSV_CAP : CSV_CAP + 1].exists()
