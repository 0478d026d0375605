import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from mdm.consumers import ConsoleConsumer
from mdm.realtime import broadcast

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(user, topics: str = ""):
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), f"/ws/console/?topics={topics}")
    communicator.scope["user"] = user
    return communicator


async def test_an_anonymous_socket_is_closed_with_4401():
    communicator = _communicator(AnonymousUser())
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4401


async def test_a_signed_in_page_receives_what_services_broadcast_on_its_topics(viewer_user):
    communicator = _communicator(viewer_user, "devices,command.7c9e6679-7425-40de-944b-e07fc1f90ae7")
    connected, _ = await communicator.connect()
    assert connected

    @database_sync_to_async
    def change_and_broadcast():
        with transaction.atomic():
            broadcast("devices", '<div id="x" hx-swap-oob="true">1</div>')

    await change_and_broadcast()
    assert await communicator.receive_from(timeout=5) == '<div id="x" hx-swap-oob="true">1</div>'
    await communicator.disconnect()


async def test_nothing_is_sent_when_the_transaction_rolls_back(viewer_user):
    communicator = _communicator(viewer_user, "devices")
    await communicator.connect()

    @database_sync_to_async
    def change_then_fail():
        try:
            with transaction.atomic():
                broadcast("devices", "<p>never</p>")
                raise RuntimeError
        except RuntimeError:
            pass

    await change_then_fail()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_unknown_topics_are_not_joined(viewer_user):
    communicator = _communicator(viewer_user, "secrets,device.not-a-uuid")
    await communicator.connect()

    @database_sync_to_async
    def send():
        with transaction.atomic():
            broadcast("secrets", "<p>leak</p>")

    await send()
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_an_open_page_counts_as_watched_until_it_closes(viewer_user):
    from mdm import realtime

    topic = "device.7c9e6679-7425-40de-944b-e07fc1f90ae7"
    watched = database_sync_to_async(realtime.watched)
    first, second = _communicator(viewer_user, topic), _communicator(viewer_user, topic)
    assert await watched([topic]) == set()
    await first.connect()
    await second.connect()
    assert await watched([topic, "device.00000000-0000-0000-0000-000000000000"]) == {topic}
    await first.disconnect()
    assert await watched([topic]) == {topic}  # the other page is still open
    await second.disconnect()
    assert await watched([topic]) == set()
