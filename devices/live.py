"""Coalescing of live status updates for the console.

A fleet of 2,000 devices heartbeating every 30 s is ~70 heartbeats a second; a console needs
none of most of them. The heartbeat marks a device *dirty* only when something a console shows
changes visibly (online/offline, battery level, charging), and at most one flush per second
renders the dirty devices' cells into one message per topic. The dirty set lives in Redis
(shared by every web process; the heartbeat's own Lua call adds to it, see devices.writebehind;
other callers use one SADD + SET NX pipeline); without Redis (embedded default) it is a set in
the process.
"""

import threading

from django.conf import settings

from mdm import redis_client

DIRTY_KEY = f"{settings.CACHE_PREFIX}:devices:dirty"
PENDING_KEY = f"{settings.CACHE_PREFIX}:devices:flush-pending"
FLUSH_DELAY_S = 1
PENDING_TTL_S = FLUSH_DELAY_S + 1
MAX_PER_FLUSH = 500

_local_dirty: set[str] = set()
_local_lock = threading.Lock()


def _redis():
    return redis_client.client()


def mark_dirty(device_ids) -> bool:
    """Remember devices whose visible status changed; True when the caller should schedule a
    flush (none is pending yet)."""
    ids = [str(i) for i in device_ids]
    if not ids:
        return False
    client = _redis()
    if client is None:
        with _local_lock:
            _local_dirty.update(ids)
        return True
    pipe = client.pipeline(transaction=False)
    pipe.sadd(DIRTY_KEY, *ids)
    pipe.set(PENDING_KEY, 1, nx=True, ex=PENDING_TTL_S)
    _, scheduled = pipe.execute()
    return bool(scheduled)


def redis_keys() -> tuple[str, str]:
    """The dirty set and the "flush pending" key, for the heartbeat's Lua call, which marks a
    visible change itself (devices.writebehind) in the same round trip."""
    return DIRTY_KEY, PENDING_KEY


def take_dirty(limit: int | None = None) -> list[str]:
    limit = limit or MAX_PER_FLUSH
    client = _redis()
    if client is None:
        with _local_lock:
            taken = list(_local_dirty)[:limit]
            _local_dirty.difference_update(taken)
        return taken
    # Clear "pending" before popping: a device marked in between schedules its own flush rather
    # than being stranded in the set.
    pipe = client.pipeline(transaction=False)
    pipe.delete(PENDING_KEY)
    pipe.spop(DIRTY_KEY, limit)
    _, popped = pipe.execute()
    return [i.decode() for i in popped or []]


def pending_count() -> int:
    client = _redis()
    if client is None:
        return len(_local_dirty)
    return client.scard(DIRTY_KEY)


def clear() -> None:
    """Tests: forget everything pending."""
    client = _redis()
    if client is None:
        with _local_lock:
            _local_dirty.clear()
        return
    client.delete(DIRTY_KEY, PENDING_KEY)
