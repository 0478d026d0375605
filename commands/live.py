"""Live command progress for the console, coalesced.

A 20,000-device command produces tens of thousands of state changes a minute; a console needs a
few updates a second. Services call `changed_on_commit(command_ids, delivery_pks)` inside their
transaction; after commit the ids are added to this process's pending set, and a flusher thread
sends, at most every FLUSH_INTERVAL_S per command, one counters partial and the changed rows
(at most MAX_ROWS; the page re-fetches past that) through mdm.realtime to topic
`command.<uuid>`, plus the history row to topic `commands`.
Tests set SYNC (commands/tests/conftest.py): the flush then runs inline after commit.
"""

import logging
import threading

from django.db import close_old_connections, transaction
from django.template.loader import render_to_string

from mdm import realtime

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.3
MAX_ROWS = 200
SYNC = False

_lock = threading.Lock()
_pending: dict[str, set] = {}
_wake = threading.Event()
_thread: threading.Thread | None = None


def changed_on_commit(command_ids, delivery_pks=()) -> None:
    command_ids = [str(c) for c in command_ids]
    delivery_pks = list(delivery_pks)
    if command_ids:
        transaction.on_commit(lambda: note(command_ids, delivery_pks))


def issued_on_commit(command) -> None:
    transaction.on_commit(lambda: _announce_issued(str(command.pk)))


def _announce_issued(command_id: str) -> None:
    """The new row for an open history page (and nothing, not even its counters query, when none is)."""
    try:
        if "commands" not in realtime.watched(["commands"]):
            return
    except Exception:
        logger.warning("live watch count unavailable", exc_info=True)
    _send_history_row(command_id, created=True)


def note(command_ids, delivery_pks=()) -> None:
    if SYNC:
        for cid in command_ids:
            flush_command(cid, set(delivery_pks))
        return
    with _lock:
        for cid in command_ids:
            _pending.setdefault(cid, set()).update(delivery_pks)
    _ensure_thread()
    _wake.set()


def _ensure_thread() -> None:
    global _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="command-live", daemon=True)
            _thread.start()


def _loop() -> None:
    import time

    while True:
        _wake.wait()
        _wake.clear()
        try:
            flush_all()
        except Exception:
            logger.exception("live flush failed")
        finally:
            close_old_connections()
        time.sleep(FLUSH_INTERVAL_S)


def flush_all() -> None:
    with _lock:
        pending = dict(_pending)
        _pending.clear()
    for cid, pks in pending.items():
        flush_command(cid, pks)


def render_updates(command_id: str, delivery_pks: set) -> list[str]:
    """The WebSocket messages for a command page: counters first, then changed rows."""
    from commands import selectors

    command = selectors.command_with_counters(command_id)
    if command is None:
        return []
    messages = [render_to_string("commands/_counters.html", {"command": command, "counters": command.counters, "oob": True})]
    if delivery_pks:
        rows = selectors.delivery_rows(command_id, pks=sorted(delivery_pks)[:MAX_ROWS])
        if rows:
            messages.append(
                "".join(render_to_string("commands/_delivery_row.html", {"d": d, "oob": True}) for d in rows)
            )
    return messages


def flush_command(command_id: str, delivery_pks: set) -> None:
    """Render and send only what an open page shows (mdm.realtime.watched)."""
    try:
        open_pages = realtime.watched([f"command.{command_id}", "commands"])
        if f"command.{command_id}" in open_pages:
            for html in render_updates(command_id, delivery_pks):
                realtime.send_now(f"command.{command_id}", html)
        if "commands" in open_pages:
            _send_history_row(command_id)
    except Exception:
        logger.exception("live update failed", extra={"command_id": command_id})


def _send_history_row(command_id: str, created: bool = False) -> None:
    from commands import selectors

    try:
        command = selectors.command_with_counters(command_id)
        if command is None:
            return
        html = render_to_string("commands/_command_row.html", {"c": command, "oob": "afterbegin:#command-rows" if created else True})
        realtime.send_now("commands", html)
    except Exception:  # a lost live update must never fail the change that caused it
        logger.exception("live history update failed", extra={"command_id": command_id})
