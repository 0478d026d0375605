"""Maintenance of the heartbeat history's daily partitions (PostgreSQL).

The table is range-partitioned by `at` (UTC days) with a DEFAULT partition as a safety net.
Partitions are created days ahead (never lazily on the hot path) because PostgreSQL refuses to
create a partition whose range already has rows in the DEFAULT partition; should that happen
anyway (maintenance stopped for a week), `ensure_partition` moves those rows into the new
partition in the same transaction. Partitions past `history_retention_days` are dropped whole,
which is instant and leaves no bloat, unlike DELETE.

On SQLite (embedded default) the table is plain: ensuring is a no-op and expiry deletes rows.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE = "devices_heartbeatsample"
DEFAULT_PARTITION = f"{TABLE}_default"
DAYS_AHEAD = 7
_NAME = re.compile(rf"^{TABLE}_p(\d{{8}})$")
# Never queue behind a long query holding the parent table: give up and retry on the next run.
LOCK_TIMEOUT = "5s"


@dataclass(frozen=True)
class Partition:
    name: str
    day: date | None  # None for the DEFAULT partition
    rows: int

    @property
    def is_default(self) -> bool:
        return self.day is None


def is_partitioned() -> bool:
    return connection.vendor == "postgresql"


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _today() -> date:
    return timezone.now().astimezone(UTC).date()


def list_partitions(*, with_counts: bool = False) -> list[Partition]:
    if not is_partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.reltuples::bigint
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = %s
            """,
            [TABLE],
        )
        rows = cursor.fetchall()
        result = []
        for name, estimate in rows:
            count = max(estimate, 0)
            if with_counts:
                cursor.execute(f'SELECT count(*) FROM "{name}"')
                count = cursor.fetchone()[0]
            match = _NAME.match(name)
            day = datetime.strptime(match.group(1), "%Y%m%d").date() if match else None
            result.append(Partition(name=name, day=day, rows=count))
    return sorted(result, key=lambda p: (p.day is not None, p.day or date.min))


def ensure_partition(day: date) -> bool:
    """Create the partition of `day` if missing; True when created."""
    if not is_partitioned():
        return False
    name = partition_name(day)
    start, end = _bounds(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # One maintainer at a time (beat, a manual `manage.py partitions`, the migration).
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{DEFAULT_PARTITION}" WHERE at >= %s AND at < %s)', [start, end])
        if cursor.fetchone()[0]:
            # Rows of this day already sit in DEFAULT: CREATE ... PARTITION OF would fail, so
            # build the table beside, move the rows, then attach it.
            cursor.execute(f'CREATE TABLE "{name}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
            cursor.execute(
                f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE at >= %s AND at < %s RETURNING *) '
                f'INSERT INTO "{name}" SELECT * FROM moved',
                [start, end],
            )
            cursor.execute(f'ALTER TABLE "{TABLE}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)', [start, end])
            logger.warning("partition created with rows moved from DEFAULT", extra={"partition": name})
        else:
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{TABLE}" FOR VALUES FROM (%s) TO (%s)', [start, end])
    return True


def ensure_partitions(*, today: date | None = None, days_ahead: int = DAYS_AHEAD) -> list[str]:
    """Partitions for today and the next `days_ahead` days; returns the names created."""
    today = today or _today()
    created = []
    for offset in range(days_ahead + 1):
        day = today + timedelta(days=offset)
        if ensure_partition(day):
            created.append(partition_name(day))
    return created


def drop_expired(*, retention_days: int | None = None, today: date | None = None) -> list[str]:
    """Drop partitions wholly older than the retention; returns what was dropped. Rows older than
    the retention that sit in DEFAULT (or in the plain SQLite table) are deleted."""
    from devices.models import HeartbeatSample
    from mdm.models import FleetSettings

    retention_days = retention_days or FleetSettings.current().history_retention_days
    cutoff_day = (today or _today()) - timedelta(days=retention_days)
    cutoff, _ = _bounds(cutoff_day)
    if not is_partitioned():
        HeartbeatSample.objects.filter(at__lt=cutoff).delete()
        return []
    dropped = []
    for part in list_partitions():
        if part.is_default or part.day >= cutoff_day:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [TABLE])
            cursor.execute(f'DROP TABLE IF EXISTS "{part.name}"')
        dropped.append(part.name)
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{DEFAULT_PARTITION}" WHERE at < %s', [cutoff])
    return dropped


def maintain() -> dict:
    """The periodic job: create ahead, then drop past retention."""
    return {"created": ensure_partitions(), "dropped": drop_expired()}
