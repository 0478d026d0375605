"""The one broadcast helper: services call it; it sends after commit. Consumers only forward.

Topics are channel-layer group names: "fleet" (every console page), "devices",
"device.<uuid>", "command.<uuid>". The payload is HTML rendered from the same partial the page
includes; htmx's ws extension swaps it in by id (hx-swap-oob).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


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
