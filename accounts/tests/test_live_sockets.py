"""Console sockets end with the session they were opened with: sign-out, deactivation and a
password change close them (4401). Through the production WebSocket stack (origin check, session
cookie, Channels' auth) and the Redis channel layer."""

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts import services
from mdm.realtime import CLOSE_CODE
from mdm.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct-horse-battery-staple"
NEW_PASSWORD = "brand-New-passphrase-9"


def _application():
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


@sync_to_async
def _signed_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def _open_socket(client: Client) -> WebsocketCommunicator:
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    communicator = WebsocketCommunicator(
        _application(), "/ws/console/?topics=devices", headers=[(b"cookie", cookie.encode()), (b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _closed_with(communicator) -> int:
    message = await communicator.receive_output(timeout=5)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def test_signing_out_closes_that_sessions_sockets_and_no_other(viewer_user):
    browser, other_browser = await _signed_in_client(viewer_user), await _signed_in_client(viewer_user)
    socket, other_socket = await _open_socket(browser), await _open_socket(other_browser)

    response = await sync_to_async(browser.post)("/accounts/logout/")
    assert response.status_code == 302

    assert await _closed_with(socket) == CLOSE_CODE
    assert await other_socket.receive_nothing(timeout=0.5)
    await other_socket.disconnect()


async def test_a_signed_out_session_cannot_open_a_socket(viewer_user):
    browser = await _signed_in_client(viewer_user)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    await sync_to_async(browser.post)("/accounts/logout/")
    communicator = WebsocketCommunicator(
        _application(), "/ws/console/", headers=[(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://localhost")]
    )
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == CLOSE_CODE


async def test_deactivation_closes_every_socket_of_the_user(admin_user, viewer_user):
    sockets = [await _open_socket(await _signed_in_client(viewer_user)) for _ in range(2)]
    await database_sync_to_async(services.set_active)(actor=admin_user, user=viewer_user, active=False)
    assert [await _closed_with(s) for s in sockets] == [CLOSE_CODE, CLOSE_CODE]


async def test_a_password_change_closes_every_socket_of_the_user(viewer_user):
    browser, other_browser = await _signed_in_client(viewer_user), await _signed_in_client(viewer_user)
    sockets = [await _open_socket(browser), await _open_socket(other_browser)]
    response = await sync_to_async(browser.post)(
        "/accounts/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert [await _closed_with(s) for s in sockets] == [CLOSE_CODE, CLOSE_CODE]
    # The page that changed it reconnects (its session goes on); the other session's cannot.
    await (await _open_socket(browser)).disconnect()
    communicator = WebsocketCommunicator(
        _application(), "/ws/console/",
        headers=[(b"cookie", f"sessionid={other_browser.cookies['sessionid'].value}".encode()), (b"origin", b"http://localhost")],
    )
    assert (await communicator.connect(timeout=5))[0] is False


async def test_another_users_sign_out_leaves_a_socket_open(viewer_user, operator_user):
    socket = await _open_socket(await _signed_in_client(viewer_user))
    other = await _signed_in_client(operator_user)
    await sync_to_async(other.post)("/accounts/logout/")
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


async def test_a_socket_racing_a_sign_out_is_refused(viewer_user):
    """The handshake read the session just before the sign-out committed: the socket re-reads it
    after joining its groups (the close was sent before it listened) and gives up."""
    from importlib import import_module

    from mdm.consumers import ConsoleConsumer

    browser = await _signed_in_client(viewer_user)
    key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    await sync_to_async(browser.post)("/accounts/logout/")
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = viewer_user  # as resolved before the sign-out
    communicator.scope["session"] = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == 4401
