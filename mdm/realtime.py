"""The one broadcast helper: services call it; it sends after commit. Consumers only forward.

Topics are channel-layer group names: "fleet" (every console page), "dashboard", "devices",
"device.<uuid>", "command.<uuid>", "rollouts", "rollout.<uuid>". The payload is HTML rendered from the same partial the page
includes; htmx's ws extension swaps it in by id (hx-swap-oob).

Every socket also joins two groups of its own, "user.<uuid>" and "session.<digest>", through
which account services close it (sign-out, deactivation, password change): a socket is
authenticated once, at connect, so without this it would outlive the session it was opened with.
"""

import hashlib
import logging
import threading
from collections import Counter

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from mdm import redis_client

logger = logging.getLogger(__name__)

# How many console pages watch each topic, so a live flush renders only for pages someone has
# open: after an enrollment storm, 2,000 device pages no one watches cost ~2 CPU-seconds of
# template rendering, and a 2,000-device fan-out re-rendered its 200-row table every 0.3 s in
# every web process while results streamed in. A hash in Redis (shared by every process), a
# Counter in the process without it. Counting is one Lua call (increment, and drop the field at
# zero) so two processes cannot lose a page between them. A page whose process died without
# disconnecting leaves its count behind: that only costs renders.
_local_watch: Counter = Counter()
_local_lock = threading.Lock()
_WATCH = """
for i, topic in ipairs(ARGV) do
  if i > 1 and redis.call('HINCRBY', KEYS[1], topic, tonumber(ARGV[1])) <= 0 then
    redis.call('HDEL', KEYS[1], topic)
  end
end
return 1
"""


def watch_key() -> str:
    """The Redis hash of open pages per topic (the heartbeat's Lua call reads it: devices.live)."""
    return f"{settings.CACHE_PREFIX}:live:watched"


def watch(topics, delta: int = 1) -> None:
    """A console page joined (delta 1) or left (-1) these topics."""
    topics = list(topics)
    if not topics:
        return
    client = redis_client.client()
    if client is None:
        with _local_lock:
            for topic in topics:
                _local_watch[topic] += delta
                if _local_watch[topic] <= 0:
                    del _local_watch[topic]
        return
    client.eval(_WATCH, 1, watch_key(), delta, *topics)


def watched(topics: list[str]) -> set[str]:
    """Those of `topics` that at least one console page has open."""
    if not topics:
        return set()
    client = redis_client.client()
    if client is None:
        with _local_lock:
            return {t for t in topics if _local_watch.get(t, 0) > 0}
    counts = client.hmget(watch_key(), topics)
    return {t for t, n in zip(topics, counts) if n is not None and int(n) > 0}


def send_now(topic: str, html: str) -> None:
    send_many_now([(topic, html)])


def send_many_now(messages: list[tuple[str, str]]) -> None:
    """One event loop for all of them: async_to_sync starts a thread per call (py-spy: a live
    flush of 500 device pages spent a third of its time starting threads)."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all():
        for topic, html in messages:
            try:
                await layer.group_send(topic, {"type": "console.html", "html": html})
            except Exception:  # a lost live update must never fail the change that caused it
                logger.exception("broadcast failed", extra={"topic": topic})

    async_to_sync(send_all)()


def broadcast(topic: str, html: str) -> None:
    """Send html to every console page joined to topic, once the current transaction commits."""
    transaction.on_commit(lambda: send_many_now([(topic, html)]))


def broadcast_many(messages: list[tuple[str, str]]) -> None:
    """broadcast() for several topics at once, sent in one go after commit."""
    transaction.on_commit(lambda: send_many_now(messages))


CLOSE_CODE = 4401  # the console reloads on it (static/js/console.js), landing on sign-in if need be


def user_group(user_id) -> str:
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    # The session key is a credential; the group name (a Redis key) carries a digest of it.
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def close_sockets(group: str) -> None:
    """Close every console socket in group once the current transaction commits."""

    def send():
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(group, {"type": "console.close"})
        except Exception:  # the change stands; its sockets still die at their next connect
            logger.exception("closing sockets failed", extra={"group": group})

    transaction.on_commit(send)
