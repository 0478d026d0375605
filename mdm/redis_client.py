"""The one Redis client for the project's own keys (live-update coalescing, the registration
queue, command markers, heartbeat write-behind). Django's cache and Celery keep their own pools."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=2)
def _client_for(url: str) -> redis.Redis:
    # Blocking pool: under a burst, threads wait briefly for a connection instead of failing.
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=100, timeout=5, socket_timeout=2, socket_connect_timeout=2
    )
    return redis.Redis(connection_pool=pool)


def client() -> redis.Redis | None:
    """The shared client, or None without Redis (embedded default)."""
    return _client_for(settings.REDIS_URL) if settings.REDIS_URL else None
