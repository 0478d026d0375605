"""What a write-behind flush cannot write, set aside with its reason (issue 14).

The heartbeat and result flushes (devices.writebehind, commands.results) write a second's worth
of queued entries in one statement. One entry PostgreSQL refuses (a NUL in a text, a number out
of its column's range) used to fail that statement, every retry of it, and so every later flush:
one device stopped the whole fleet's status. Now a flush writes its batch through `isolate()`:
when the batch statement fails because of the data (a DataError, or Python refusing to encode a
value), the batch is split in halves, each in its own savepoint, down to the entries at fault;
the rest lands, and each bad entry becomes a *dead letter*: kept here with its reason, counted in
`mdm_dead_letters_total{kind}`, shown to admins (console Operations page, `GET
/api/v1/dead-letters`, `manage.py dead_letters`), and never retried. A database that is away
(OperationalError, InterfaceError) is nobody's fault: `isolate()` lets that through and the
flush leaves its batch for the next one.

Storage: one Redis list, newest first, at most MAX_LETTERS (older ones fall off), each a JSON
object. The entry is kept as `mdm.text.loggable` makes it (forbidden characters escaped, cut to
MAX_ENTRY_CHARS), so what broke a write is never stored raw again anywhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

from django.conf import settings
from django.db import DataError, IntegrityError, OperationalError, transaction

from mdm import metrics, redis_client, text

MAX_LETTERS = 10_000
MAX_ENTRY_CHARS = 4096
MAX_REASON_CHARS = 300
KINDS = ("heartbeat_state", "heartbeat_sample", "result", "policy_report")

# An entry's own fault: PostgreSQL refused its values (DataError: NUL, out of range, bad syntax;
# IntegrityError: a constraint), or psycopg could not send them (a lone surrogate does not encode:
# UnicodeEncodeError, a ValueError). Anything else (OperationalError, InterfaceError: the database
# is away; ProgrammingError: our statement) would fail every entry alike and is left to the
# caller. The flushes parse and convert each entry before the statement, one by one, so a
# malformed entry is set aside there already.
ENTRY_ERRORS = (DataError, IntegrityError, ValueError, OverflowError)
# SQLSTATE classes of an entry's own fault that PostgreSQL's drivers file as OperationalError:
# 54 "program limit exceeded" (e.g. a value too big for an index entry).
_ENTRY_SQLSTATE_CLASSES = ("54",)


def entry_fault(exc: BaseException) -> bool:
    """Whether `exc` is the fault of the data being written (set it aside) rather than of the
    database or of our statement (leave the batch for the next flush)."""
    if isinstance(exc, ENTRY_ERRORS):
        return True
    if isinstance(exc, OperationalError):
        sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
        return sqlstate[:2] in _ENTRY_SQLSTATE_CLASSES
    return False

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Letter:
    kind: str  # one of KINDS
    reason: str  # why it was set aside, loggable
    entry: str  # the entry as queued, loggable and cut
    size: int  # bytes of the entry as queued
    device_id: str | None = None
    at: int = 0  # Unix seconds


def letter(kind: str, raw: bytes | str, reason: BaseException | str, *, device_id: str | None = None) -> Letter:
    """A dead letter of `raw` (the entry as the queue held it)."""
    if isinstance(raw, bytes):
        size, shown = len(raw), raw.decode("utf-8", errors="backslashreplace")
    else:
        size, shown = len(raw.encode("utf-8", errors="surrogatepass")), raw
    return Letter(
        kind=kind,
        reason=describe(reason),
        entry=text.loggable(shown, limit=MAX_ENTRY_CHARS),
        size=size,
        device_id=text.loggable(str(device_id), limit=64) if device_id is not None else None,
        at=int(time.time()),
    )


def describe(reason: BaseException | str) -> str:
    """The reason in one loggable line: the exception's class and its first line (PostgreSQL's
    messages may quote the value, hence loggable)."""
    if isinstance(reason, BaseException):
        first = (str(reason).strip().splitlines() or [""])[0]
        reason = f"{type(reason).__name__}: {first}" if first else type(reason).__name__
    return text.loggable(reason, limit=MAX_REASON_CHARS)


def isolate(items: Sequence[T], write: Callable[[Sequence[T]], list[R] | None]) -> tuple[list[R], list[tuple[T, BaseException]]]:
    """Write `items` with `write(batch)` (which returns what it wrote, e.g. RETURNING rows), each
    attempt in a savepoint of the caller's transaction; on an entry's fault (`entry_fault`) the
    batch is split in halves until the entries at fault are alone. Returns (everything the
    successful writes returned, [(bad item, its error)]). Other errors propagate (the caller's
    transaction then rolls back as a whole). One bad entry in n costs about 2·log2(n) extra
    statements; the common case, none, costs one savepoint."""
    written: list[R] = []
    bad: list[tuple[T, BaseException]] = []
    pending: list[Sequence[T]] = [items] if items else []
    while pending:
        batch = pending.pop()
        try:
            with transaction.atomic():
                written.extend(write(batch) or [])
        except Exception as exc:
            if not entry_fault(exc):
                raise
            if len(batch) == 1:
                bad.append((batch[0], exc))
            else:
                middle = len(batch) // 2
                pending += [batch[middle:], batch[:middle]]  # the first half is tried first
    return written, bad


def _direct(items: Sequence[T], write: Callable[[Sequence[T]], list[R] | None]) -> tuple[list[R], list]:
    return (list(write(items) or []) if items else []), []


def write_isolating(body: Callable[[Callable], R]) -> R:
    """Run `body(isolate)` in one transaction and return what it returns. `body` writes its
    batches through the function it is given. The first run writes each batch in one go, without
    savepoints (the common case costs nothing more than before); if an entry's fault (`entry_fault`)
    fails it, that transaction is rolled back and `body` runs again in a new one with `isolate()`,
    which sets the bad entries aside. `body` must therefore be safe to run twice."""
    try:
        with transaction.atomic():
            return body(_direct)
    except Exception as exc:
        if not entry_fault(exc):
            raise
    with transaction.atomic():
        return body(isolate)


# --- storage -------------------------------------------------------------------------------------

def key() -> str:
    return f"{settings.CACHE_PREFIX}:deadletters"


def queue_on(pipe, letters: Sequence[Letter]) -> None:
    """Add the letters to a caller's Redis pipeline (so a flush can add them in the same
    MULTI that releases its claim); call `counted(letters)` once it has executed."""
    if letters:
        pipe.lpush(key(), *(json.dumps(asdict(x), separators=(",", ":")) for x in letters))
        pipe.ltrim(key(), 0, MAX_LETTERS - 1)


def counted(letters: Sequence[Letter]) -> None:
    for x in letters:
        metrics.DEAD_LETTERS.labels(x.kind).inc()


def record(letters: Sequence[Letter]) -> None:
    client = redis_client.client()
    if client is None or not letters:
        return
    pipe = client.pipeline(transaction=True)
    queue_on(pipe, letters)
    pipe.execute()
    counted(letters)


def count() -> int:
    client = redis_client.client()
    return int(client.llen(key())) if client is not None else 0


def entries(*, offset: int = 0, limit: int = 100) -> list[dict]:
    """The newest first."""
    client = redis_client.client()
    if client is None or limit <= 0:
        return []
    return [json.loads(raw) for raw in client.lrange(key(), offset, offset + limit - 1)]


def purge() -> int:
    """Delete every dead letter; returns how many there were."""
    client = redis_client.client()
    if client is None:
        return 0
    pipe = client.pipeline(transaction=True)
    pipe.llen(key())
    pipe.delete(key())
    n, _ = pipe.execute()
    return int(n)
