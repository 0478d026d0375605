import re
from importlib import import_module
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.auth import get_user
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from mdm import realtime

TOPIC = re.compile(r"^(fleet|dashboard|devices|commands|rollouts|alerts|device\.[0-9a-f-]{36}|command\.[0-9a-f-]{36}|rollout\.[0-9a-f-]{36})$")
MAX_TOPICS = 10


async def _still_signed_in(session_key: str, user_id) -> bool:
    """The session read afresh from its store, its user and credential stamp checked (Channels'
    own get_user, which flushes a session whose stamp no longer matches)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    user = await get_user({"session": store})
    return user.is_authenticated and user.is_active and user.pk == user_id


class ConsoleConsumer(AsyncWebsocketConsumer):
    """The console's live channel: authenticate by session, join the page's topics, forward the
    HTML partials that services broadcast. Nothing else happens here."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        # Joined before anything else: a sign-out, deactivation or password change committed from
        # here on closes this socket (services -> realtime.close_sockets).
        self.account_groups = [realtime.user_group(user.pk)]
        session_key = getattr(self.scope.get("session"), "session_key", None)
        if session_key:
            self.account_groups.append(realtime.session_group(session_key))
        for group in self.account_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        if session_key and not await _still_signed_in(session_key, user.pk):
            # Signed out (or deactivated, or the password changed) between the handshake's
            # session read and joining the groups above: the close was sent before we listened.
            await self.close(code=4401)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        wanted = [t for raw in query.get("topics", []) for t in raw.split(",") if t]
        self.topics = ["fleet"] + [t for t in wanted if TOPIC.match(t)][:MAX_TOPICS]
        for topic in self.topics:
            await self.channel_layer.group_add(topic, self.channel_name)
        await sync_to_async(realtime.watch)(self.topics, 1)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "account_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        topics = getattr(self, "topics", [])
        for topic in topics:
            await self.channel_layer.group_discard(topic, self.channel_name)
        if topics:
            await sync_to_async(realtime.watch)(topics, -1)

    async def receive(self, text_data=None, bytes_data=None):
        # The console only listens; anything a page sends is ignored.
        return

    async def console_html(self, event):
        await self.send(text_data=event["html"])

    async def console_close(self, event):
        await self.close(code=realtime.CLOSE_CODE)
