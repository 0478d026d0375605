"""The FCM stand-in speaks FCM HTTP v1 as Google does: the OAuth2 JWT-bearer grant, then
messages:send with FCM's own success and error bodies; mdm.fcm (firebase-admin's credentials and
message encoding, pointed at the stand-in by the two overrides) reads those bodies as FCM's."""

import time

import httpx
import pytest

from mdm import fcm
from loadtest.fcm_standin import FCM_ERROR_TYPE


def send(standin, token, data=None, ttl_s=60):
    return fcm.send_each([fcm.PushMessage(token=token, data=data or {"kind": "sync"}, ttl_s=ttl_s)])[0]


def test_firebase_admin_gets_an_oauth_token_and_sends_through_the_standin(fcm_standin):
    fcm_standin.register(["tok-1"])
    result = send(fcm_standin, "tok-1", {"kind": "sync"})
    assert result.ok and result.message_id.startswith("projects/mdm-test/messages/")
    stats = fcm_standin.stats()
    assert stats["tokens_issued"] == 1 and stats["delivered"] == 1
    record = fcm_standin.messages(token="tok-1")["messages"][0]
    assert record["message"]["data"] == {"kind": "sync"}
    assert record["message"]["android"]["priority"] == "high" and record["message"]["android"]["ttl"] == "60s"


def test_a_send_without_a_valid_access_token_is_401_unauthenticated(fcm_standin):
    response = httpx.post(fcm_standin.send_url, json={"message": {"token": "t", "data": {}}}, headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401 and response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_the_token_endpoint_refuses_an_assertion_not_signed_by_the_service_account(fcm_standin):
    import base64
    import json

    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    creds = fcm_standin.credentials()
    forged = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64({'iss': creds['client_email'], 'aud': creds['token_uri'], 'exp': time.time() + 60, 'scope': 'https://www.googleapis.com/auth/firebase.messaging'})}.AAAA"
    response = httpx.post(creds["token_uri"], data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": forged})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "error,status,rpc_status,code",
    [("UNREGISTERED", 404, "NOT_FOUND", "UNREGISTERED"), ("QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
     ("UNAVAILABLE", 503, "UNAVAILABLE", "UNAVAILABLE"), ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")],
)
def test_injected_failures_use_fcms_real_error_bodies_and_firebase_admin_maps_them(fcm_standin, error, status, rpc_status, code):
    fcm_standin.register(["tok-e"])
    fcm_standin.fail(["tok-e"], error=error)
    result = send(fcm_standin, "tok-e")
    assert not result.ok and result.code == code
    # The raw wire answer, as FCM writes it.
    access = httpx.post(fcm_standin.credentials()["token_uri"], data={"grant_type": "x"}).json()
    assert access["error"] == "unsupported_grant_type"


def test_an_unknown_token_is_404_unregistered_with_the_fcm_error_detail(fcm_standin):
    result = send(fcm_standin, "never-registered")
    assert not result.ok and result.code == "UNREGISTERED"
    # and on the wire:
    import google.auth.transport.requests
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(
        fcm_standin.credentials_file, scopes=["https://www.googleapis.com/auth/firebase.messaging"]
    )
    creds.refresh(google.auth.transport.requests.Request())
    response = httpx.post(fcm_standin.send_url, json={"message": {"token": "never-registered", "data": {"a": "b"}}},
                          headers={"Authorization": f"Bearer {creds.token}"})
    body = response.json()["error"]
    assert response.status_code == 404 and body["status"] == "NOT_FOUND"
    assert body["details"] == [{"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}]


def test_a_malformed_message_is_400_invalid_argument(fcm_standin):
    fcm_standin.register(["tok-m"])
    result = send(fcm_standin, "tok-m", {"kind": "x" * 5000})
    assert not result.ok and result.code == "INVALID_ARGUMENT" and "too big" in result.detail


def test_a_consumer_long_polls_for_delivered_messages(fcm_standin):
    import threading

    fcm_standin.register(["tok-p"])
    got = {}
    poller = threading.Thread(target=lambda: got.update(fcm_standin.messages(token="tok-p", wait=10)))
    poller.start()
    time.sleep(0.3)
    send(fcm_standin, "tok-p", {"kind": "sync"})
    poller.join(timeout=10)
    assert [m["token"] for m in got["messages"]] == ["tok-p"] and got["last"] == got["messages"][0]["n"]


def test_failures_can_be_limited_to_a_number_of_sends(fcm_standin):
    fcm_standin.register(["tok-n"])
    fcm_standin.fail(["tok-n"], error="INVALID_ARGUMENT", times=1)
    assert send(fcm_standin, "tok-n").code == "INVALID_ARGUMENT"
    assert send(fcm_standin, "tok-n").ok


def test_a_429_or_503_that_carries_retry_after_is_retried_as_firebase_admin_does(fcm_standin):
    # As with Google: a short burst of 429s is absorbed by the client's own retries.
    fcm_standin.register(["tok-r"])
    fcm_standin.fail(["tok-r"], error="QUOTA_EXCEEDED", times=2)
    assert send(fcm_standin, "tok-r").ok
    assert fcm_standin.stats()["error_QUOTA_EXCEEDED"] == 2


def test_many_pushes_at_once_each_get_their_own_answer_in_order(fcm_standin):
    fcm_standin.register([f"tok-{i}" for i in range(0, 300, 2)])  # every other token is known
    results = fcm.send_each([fcm.PushMessage(token=f"tok-{i}", data={"kind": "sync", "i": str(i)}, ttl_s=60) for i in range(300)])
    assert [r.ok for r in results] == [i % 2 == 0 for i in range(300)]
    assert {r.code for r in results if not r.ok} == {"UNREGISTERED"}
    assert fcm.send_each([fcm.PushMessage(token="tok-0", data={"kind": "sync"}, ttl_s=60)])[0].ok
    assert fcm_standin.stats()["tokens_issued"] == 1  # one access token for the burst and the next batch


def test_a_proxy_set_in_the_environment_is_honoured(fcm_standin, monkeypatch):
    # requests' per-request environment lookup is off (mdm.fcm): the proxy is read once at build.
    fcm_standin.register(["tok-1"])
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fcm.reset()
    result = send(fcm_standin, "tok-1")
    assert not result.ok and result.code == "UNAVAILABLE"  # it went to the proxy, which refused
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    fcm.reset()
    assert send(fcm_standin, "tok-1").ok


@pytest.mark.parametrize(
    "http_status, body, code",
    [
        (404, {"error": {"status": "NOT_FOUND", "message": "gone", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}]}}, "UNREGISTERED"),
        (403, {"error": {"status": "PERMISSION_DENIED", "message": "x", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "SENDER_ID_MISMATCH"}]}}, "SENDER_ID_MISMATCH"),
        (429, {"error": {"status": "RESOURCE_EXHAUSTED", "message": "slow down"}}, "QUOTA_EXCEEDED"),
        (503, None, "UNAVAILABLE"),
        (502, {"unexpected": True}, "UNKNOWN"),
        (400, {"error": {"status": "INVALID_ARGUMENT", "message": "bad ttl"}}, "INVALID_ARGUMENT"),
    ],
)
def test_fcm_error_bodies_map_to_the_codes_dispatch_acts_on(http_status, body, code):
    assert fcm.error_code(http_status, body)[0] == code


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_with_credentials_gets_them_as_proxy_authorization(fcm_standin, monkeypatch, settings, scheme):
    """On the wire: for an http endpoint the proxy receives the request in absolute form with
    Proxy-Authorization; for https (FCM's own) the CONNECT carries it, and nothing else goes
    to the proxy in the clear."""
    import base64
    import socket
    import threading

    seen = []
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def proxy():  # answers every request (the sender retries a failed connection once) with 502
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                seen.append(data.decode("latin-1"))
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    send_url = fcm_standin.send_url.replace("http://", f"{scheme}://")
    settings.FCM_SEND_URL = send_url
    variable = "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY"
    monkeypatch.setenv(variable, f"http://fleet%40corp:s3cret@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fcm.reset()
    fcm._sender()  # reads the proxy once, here
    # The OAuth2 grant goes through google-auth's requests, which reads the environment itself:
    # without the variable it goes direct, while the pushes keep the proxy read at build.
    monkeypatch.delenv(variable)
    fcm_standin.register(["tok-1"])
    result = send(fcm_standin, "tok-1")
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    request_line, *header_lines = seen[0].split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in header_lines if line)}
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"fleet@corp:s3cret").decode()
    host = send_url.split("/")[2]
    if scheme == "http":
        assert request_line == f"POST {send_url} HTTP/1.1"
        assert not result.ok and result.code == "UNKNOWN"  # the proxy's 502, not an answer of FCM's
    else:
        assert request_line == f"CONNECT {host} HTTP/1.1" and "authorization" not in headers
        assert not result.ok and result.code == "UNAVAILABLE"  # no tunnel: retried later
    fcm.reset()
