"""The registration queue: a bounded admission in front of enrollment (bcrypt and a transaction
per device), so that a storm of thousands of devices is processed a few at a time and the rest
are told to come back (503 busy + Retry-After) instead of piling up until something breaks.

A counting semaphore in Redis shared by every web process: a sorted set of holders scored by the
time they entered; holders older than STALE_S are dropped (a process that died mid-enrollment
frees its slot). Without Redis (embedded default, one process) it is a local semaphore.
"""

import threading
import time
import uuid
from contextlib import contextmanager

from django.conf import settings

from enrollment import conf
from mdm import redis_client, metrics

KEY = f"{settings.CACHE_PREFIX}:enroll:slots"
STALE_S = 60
POLL_S = 0.05

_local_lock = threading.Lock()
_local_holders: set[str] = set()


def _redis():
    return redis_client.client()


def _try_acquire(token: str, limit: int) -> bool:
    client = _redis()
    if client is None:
        with _local_lock:
            if len(_local_holders) >= limit:
                return False
            _local_holders.add(token)
            return True
    now = time.time()
    pipe = client.pipeline(transaction=True)
    pipe.zremrangebyscore(KEY, "-inf", now - STALE_S)
    pipe.zadd(KEY, {token: now})
    pipe.zrank(KEY, token)
    pipe.expire(KEY, STALE_S)
    _, _, rank, _ = pipe.execute()
    if rank is not None and rank < limit:
        return True
    client.zrem(KEY, token)
    return False


def _release(token: str) -> None:
    client = _redis()
    if client is None:
        with _local_lock:
            _local_holders.discard(token)
        return
    client.zrem(KEY, token)


def depth() -> int:
    client = _redis()
    if client is None:
        return len(_local_holders)
    return client.zcard(KEY)


@contextmanager
def admitted(*, limit: int | None = None, wait_s: float | None = None):
    """Yields True inside a slot, False when none freed up within wait_s (answer 503 then)."""
    limit = limit if limit is not None else conf.get("ENROLL_CONCURRENCY")
    wait_s = wait_s if wait_s is not None else conf.get("ENROLL_QUEUE_WAIT_S")
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    acquired = _try_acquire(token, limit)
    while not acquired and time.monotonic() < deadline:
        time.sleep(POLL_S)
        acquired = _try_acquire(token, limit)
    if not acquired:
        yield False
        return
    metrics.ENROLL_QUEUE_DEPTH.inc()
    try:
        yield True
    finally:
        metrics.ENROLL_QUEUE_DEPTH.dec()
        _release(token)


def clear() -> None:
    """Tests: empty the queue."""
    client = _redis()
    if client is None:
        with _local_lock:
            _local_holders.clear()
    else:
        client.delete(KEY)


def hold(count: int) -> list[str]:
    """Tests: occupy `count` slots as if that many enrollments were running."""
    tokens = [uuid.uuid4().hex for _ in range(count)]
    for token in tokens:
        _try_acquire(token, limit=10**6)
    return tokens
