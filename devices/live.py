"""Coalescing of live status updates for the console.

A fleet of 2,000 devices heartbeating every 30 s is ~70 heartbeats a second; a console needs
none of most of them. The heartbeat marks a device *dirty* only when something the list shows
changes visibly (online/offline, battery level, charging), or when someone has the device's own
page open (it shows last seen, memory, foreground app: every heartbeat changes it), and at most one flush per second
renders the dirty devices' cells into one message per topic. The dirty set lives in Redis
(shared by every web process; the heartbeat's own Lua call adds to it, see devices.writebehind;
other callers use one SADD + SET NX pipeline); without Redis (embedded default) it is a set in
the process.
"""

import threading

from django.conf import settings

from mdm import realtime, redis_client

DIRTY_KEY = f"{settings.CACHE_PREFIX}:devices:dirty"
PENDING_KEY = f"{settings.CACHE_PREFIX}:devices:flush-pending"
FLUSH_DELAY_S = 1
PENDING_TTL_S = FLUSH_DELAY_S + 1
MAX_PER_FLUSH = 500
PAGE_TOPIC_PREFIX = "device."

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


def redis_keys() -> tuple[str, str, str]:
    """The dirty set, the "flush pending" key and the open-pages hash (mdm.realtime), for the
    heartbeat's Lua call, which marks a change itself (devices.writebehind) in the same round trip."""
    return DIRTY_KEY, PENDING_KEY, realtime.watch_key()


def page_topic(device_id) -> str:
    """The topic of a device's page: a page someone has open gets every heartbeat's status (its
    last seen, memory and foreground app change with each), the list only visible changes."""
    return f"{PAGE_TOPIC_PREFIX}{device_id}"


def page_open(device_id) -> bool:
    """Whether a console has this device's page open (one HGET with Redis, a dict read without)."""
    try:
        return bool(realtime.watched([page_topic(device_id)]))
    except Exception:  # a lost live update must never fail a heartbeat
        return False


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
