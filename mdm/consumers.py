import re
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from mdm import realtime

TOPIC = re.compile(r"^(fleet|devices|commands|device\.[0-9a-f-]{36}|command\.[0-9a-f-]{36})$")
MAX_TOPICS = 10


class ConsoleConsumer(AsyncWebsocketConsumer):
    """The console's live channel: authenticate by session, join the page's topics, forward the
    HTML partials that services broadcast. Nothing else happens here."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
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
