"""Which device requests get their own log line (docs/performance.md "The request log").

At fleet rates the device API answers hundreds of requests a second, nearly all of them a 200
within a few milliseconds; one JSON line each cost a third of the server's capacity and its
tail. So a device request is logged when it is worth reading: not a 2xx, slower than
LOG_SLOW_MS, or from a device an operator is tracing (`manage.py trace_device <id>`); every one
is counted with its latency in `mdm_device_request_seconds` whatever happens to its line.
`LOG_DEVICE_REQUESTS=all` logs every one, as before. Console and API requests (people) are
always logged.

The traced devices live in Redis (a sorted set scored by expiry), read by each process at most
every TRACE_REFRESH_S: no Redis call per request."""

import time

from django.conf import settings

from mdm import redis_client

TRACE_REFRESH_S = 5.0
_traced: dict = {"ids": frozenset(), "read_at": -1e9}


def trace_key() -> str:
    return f"{settings.CACHE_PREFIX}:trace:devices"


def traced_devices() -> frozenset:
    now = time.monotonic()
    if now - _traced["read_at"] >= TRACE_REFRESH_S:
        _traced["read_at"] = now
        client = redis_client.client()
        ids = frozenset()
        if client is not None:
            try:
                ids = frozenset(m.decode() for m in client.zrangebyscore(trace_key(), time.time(), "+inf"))
            except Exception:  # a trace list that cannot be read never fails a request
                ids = _traced["ids"]
        _traced["ids"] = ids
    return _traced["ids"]


def trace(device_id: str, seconds: float) -> None:
    client = redis_client.client()
    if client is None:
        raise RuntimeError("tracing devices needs Redis (REDIS_URL); without it, set LOG_DEVICE_REQUESTS=all")
    client.zadd(trace_key(), {str(device_id): time.time() + seconds})
    client.zremrangebyscore(trace_key(), "-inf", time.time())


def untrace(device_id: str) -> None:
    client = redis_client.client()
    if client is not None:
        client.zrem(trace_key(), str(device_id))


def forget_cache() -> None:
    _traced["read_at"] = -1e9


def log_device_request(device_id, status: int, duration_s: float) -> bool:
    if settings.LOG_DEVICE_REQUESTS == "all" or not 200 <= status < 300:
        return True
    if duration_s * 1000 >= settings.LOG_SLOW_MS:
        return True
    return device_id is not None and str(device_id) in traced_devices()
