"""The one module that talks to Firebase Cloud Messaging, through firebase-admin.

Configuration (mdm/settings.py): FCM_ENABLED, FCM_CREDENTIALS_FILE (a service-account JSON),
FCM_PROJECT_ID (defaults to the JSON's project_id) and FCM_SEND_URL. Pointing it at the local
stand-in (loadtest/fcm_standin.py) takes two overrides and nothing else:

- the service account's `token_uri` (in the JSON the stand-in writes), which google-auth uses for
  the OAuth2 JWT-bearer grant;
- the messaging service's send URL, `_MessagingService._fcm_url`, a private attribute of
  firebase-admin, which is why firebase-admin is pinned exactly (7.7.0). `_check_pin` fails
  loudly at start if an upgrade moves it.

Sending: FCM's HTTP v1 API takes one request per message (it has no batch call any more).
firebase-admin's `send_each` starts a thread per message (500 per call) over a 100-connection
pool, so each call opened ~400 new connections; through requests and google-auth's session a
push cost ~1 ms of CPU, and 2,000 pushes took 6 s on the 2-core bench while the fleet answered.
A persistent urllib3 pool driven by 32 threads halved that (~0.5 ms: http.client's pure-Python
response parsing and the threads' GIL hand-offs). So firebase-admin builds the credentials (its
OAuth2 access token, refreshed only when due), validates and encodes each message
(`_MessagingService._message_data`, pinned), names the endpoint and sets the retry policy; the
POSTs go out on one aiohttp session per process (C-parsed HTTP, one event loop in a thread of
its own, at most FCM_SEND_CONCURRENCY connections, default 32): ~0.1 ms of CPU per push
(docs/performance.md). FCM's error bodies are read here: `errorCode` of the FcmError detail,
else the RPC status.
"""

import asyncio
import atexit
import email.utils
import json
import logging
import os
import ssl
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import unquote, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_TTL_S = 2_419_200  # 28 days, FCM's maximum
PINNED_VERSION = "7.7.0"
# A Retry-After up to this long is waited for inside the send (as firebase-admin's client does);
# a longer one goes back to dispatch, which retries just those deliveries when it says.
RETRY_AFTER_INLINE_MAX_S = 10.0
# firebase-admin 7.7 deprecates Message.token for the Firebase installation ID (`fid`). Devices
# report FCM registration tokens (PROTOCOL.md `fcm_token`), which FCM still takes: moving to
# fids is a protocol change, not this module's.
warnings.filterwarnings("ignore", message="Message.token is deprecated", category=DeprecationWarning)

_lock = threading.Lock()
_state: dict = {"signature": None, "app": None, "sender": None, "pid": None}
_names = count(1)


class _Sender:
    """What one process needs to push: the firebase app, its messaging service, and an aiohttp
    session (bounded to FCM_SEND_CONCURRENCY connections, through the environment's proxy if
    any, read once) on an event loop of its own thread. Callers in any thread hand it a batch
    and wait for the answers."""

    def __init__(self, app):
        import aiohttp
        import certifi
        import requests.utils
        from firebase_admin import _http_client, messaging

        self.app = app
        self.service = messaging._get_messaging_service(app)
        _check_pin(self.service)
        url = send_url_for(self.service._project_id)
        if url:
            self.service._fcm_url = url
        self.url = self.service._fcm_url
        self.retry = _http_client.DEFAULT_RETRY_CONFIG  # firebase-admin's policy: its counts, statuses, backoff
        # The proxy (environment variables, as requests reads them), once. Its credentials go in
        # Proxy-Authorization: on the CONNECT for an https endpoint (FCM), on the request itself
        # for plain http (aiohttp sends `proxy_headers` only with a CONNECT).
        self.proxy, self.proxy_headers, self.request_headers = None, None, {}
        if not requests.utils.should_bypass_proxies(self.url, None):
            proxies = requests.utils.get_environ_proxies(self.url)
            proxy = proxies.get(urlsplit(self.url).scheme) or proxies.get("all")
            if proxy:
                parts = urlsplit(proxy)
                if parts.username:  # http://user:pass@proxy:3128, as requests accepts it
                    credentials = {"Proxy-Authorization": aiohttp.encode_basic_auth(unquote(parts.username), unquote(parts.password or ""))}
                    if urlsplit(self.url).scheme == "https":
                        self.proxy_headers = credentials
                    else:
                        self.request_headers = credentials
                    proxy = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
                self.proxy = proxy
        cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self.ssl = ssl.create_default_context(cafile=cafile)
        # `connect` bounds getting a connection, a proxy's CONNECT included (the gate, not the
        # connector's queue, makes the batch wait its turn, so the wait is not counted).
        self.timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=5, sock_read=float(app.options.get("httpTimeout") or 30))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fcm-send", daemon=True)
        self.thread.start()
        self.session = self.run(self._open(send_concurrency()))
        self.token_lock = threading.Lock()

    async def _open(self, limit: int):
        import aiohttp

        self.gate = asyncio.Semaphore(limit)
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, ssl=self.ssl), timeout=self.timeout)

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def access_token(self) -> str:
        """The OAuth2 access token, refreshed only when it is missing or about to expire (once,
        under a lock, whatever the number of calling threads)."""
        import google.auth.transport.requests

        credential = self.app.credential.get_credential()
        if not credential.valid:
            with self.token_lock:
                if not credential.valid:
                    credential.refresh(google.auth.transport.requests.Request())
        return credential.token

    async def post_all(self, bodies: list[str], headers: dict) -> list:
        """(status, body bytes, Retry-After) per body, or the exception that ended its tries."""
        return await asyncio.gather(*(self._post(body, headers) for body in bodies), return_exceptions=True)

    async def _post(self, body: str, headers: dict) -> tuple[int, bytes, str | None]:
        """One message, retried as firebase-admin's retry policy says: a connection or read
        failure once, a 500/503 (and a 429/503 with Retry-After) up to `status` times with its
        exponential backoff. A Retry-After longer than RETRY_AFTER_INLINE_MAX_S is not waited
        for here: the answer goes back, and dispatch retries that delivery when it says."""
        import aiohttp

        failures, statuses = 0, 0
        while True:
            try:
                async with self.gate, self.session.post(
                    self.url, data=body, headers=headers, proxy=self.proxy, proxy_headers=self.proxy_headers
                ) as response:
                    data = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, asyncio.TimeoutError):
                failures += 1
                if failures > max(self.retry.connect or 0, self.retry.read or 0):
                    raise
                continue
            wait = _retry_after(retry_after)
            retryable = status in (self.retry.status_forcelist or ()) or (
                wait is not None and status in self.retry.RETRY_AFTER_STATUS_CODES
            )
            if not retryable or statuses >= (self.retry.status or 0) or (wait or 0) > RETRY_AFTER_INLINE_MAX_S:
                return status, data, retry_after
            statuses += 1
            backoff = 0.0 if statuses <= 1 else min(self.retry.backoff_max, self.retry.backoff_factor * 2 ** (statuses - 1))
            await asyncio.sleep(max(backoff, wait or 0))

    def close(self) -> None:
        try:
            self.run(self.session.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()


@dataclass(frozen=True)
class PushMessage:
    token: str
    data: dict  # str -> str
    ttl_s: int
    collapse_key: str | None = None


@dataclass(frozen=True)
class PushResult:
    ok: bool
    message_id: str = ""
    code: str = ""  # FCM error code: UNREGISTERED, QUOTA_EXCEEDED, UNAVAILABLE, INVALID_ARGUMENT, ...
    detail: str = ""
    retry_after_s: float | None = None


class FcmNotConfigured(RuntimeError):
    pass


def enabled() -> bool:
    return bool(settings.FCM_ENABLED)


def send_url_for(project_id: str) -> str | None:
    """FCM_SEND_URL as given (a full .../messages:send URL, `{project_id}` substituted), or
    a base URL to which the standard path is appended."""
    url = settings.FCM_SEND_URL
    if not url:
        return None
    url = url.replace("{project_id}", project_id)
    if url.rstrip("/").endswith("messages:send"):
        return url.rstrip("/")
    return f"{url.rstrip('/')}/v1/projects/{project_id}/messages:send"


def _check_pin(service) -> None:
    import firebase_admin

    for name in ("_fcm_url", "_fcm_headers", "_message_data"):
        if not hasattr(service, name):
            raise FcmNotConfigured(
                f"firebase-admin {firebase_admin.__version__} has no _MessagingService.{name}; "
                f"mdm/fcm.py is written for {PINNED_VERSION}"
            )


def _build_app():
    import firebase_admin
    from firebase_admin import credentials

    if settings.FCM_CREDENTIALS_FILE:
        cred = credentials.Certificate(settings.FCM_CREDENTIALS_FILE)
    else:
        cred = credentials.ApplicationDefault()
    options = {"httpTimeout": 30}
    if settings.FCM_PROJECT_ID:
        options["projectId"] = settings.FCM_PROJECT_ID
    return firebase_admin.initialize_app(cred, options, name=f"mdm-fcm-{next(_names)}")


def send_concurrency() -> int:
    return max(1, min(100, int(getattr(settings, "FCM_SEND_CONCURRENCY", 32))))


def _sender() -> _Sender:
    signature = (settings.FCM_CREDENTIALS_FILE, settings.FCM_PROJECT_ID, settings.FCM_SEND_URL, send_concurrency())
    with _lock:
        if _state["pid"] != os.getpid():  # forked (a Celery child): threads do not survive a fork
            _state.update(signature=None, app=None, sender=None, pid=os.getpid())
        if _state["signature"] != signature or _state["sender"] is None:
            _forget()
            _state["app"] = _build_app()
            _state["sender"] = _Sender(_state["app"])
            _state["signature"] = signature
        return _state["sender"]


def warm_up() -> None:
    """Build the sender (credentials, HTTP pool, threads) before the first push needs it: ~0.5 s
    per process otherwise paid by the first fan-out. In a thread, so a slow credentials lookup
    (Application Default Credentials probing a metadata server) never delays a worker's start."""

    def build():
        try:
            _sender()
        except Exception:  # a broken configuration shows on the first send, with its reason
            logger.warning("fcm warm-up failed", exc_info=True)

    if enabled():
        threading.Thread(target=build, name="fcm-warm-up", daemon=True).start()


def _to_message(m: PushMessage):
    from firebase_admin import messaging

    return messaging.Message(
        token=m.token,
        data={str(k): str(v) for k, v in m.data.items()},
        android=messaging.AndroidConfig(
            priority="high", ttl=timedelta(seconds=max(0, min(int(m.ttl_s), MAX_TTL_S))), collapse_key=m.collapse_key
        ),
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
# RPC status -> the code we act on, when FCM gives no errorCode of its own (as firebase-admin maps them).
_BY_STATUS = {
    "NOT_FOUND": "UNREGISTERED", "RESOURCE_EXHAUSTED": "QUOTA_EXCEEDED", "DEADLINE_EXCEEDED": "UNAVAILABLE",
    "UNAVAILABLE": "UNAVAILABLE", "INTERNAL": "INTERNAL", "INVALID_ARGUMENT": "INVALID_ARGUMENT",
    "UNAUTHENTICATED": "UNAUTHENTICATED", "PERMISSION_DENIED": "PERMISSION_DENIED",
}
_BY_HTTP = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "UNREGISTERED",
            429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}


def error_code(http_status: int, body: dict | None) -> tuple[str, str]:
    """(code, message) of an FCM error answer: FCM's errorCode (UNREGISTERED, QUOTA_EXCEEDED,
    SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR, ...) when given, else the RPC status, else the
    HTTP status."""
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return _BY_HTTP.get(http_status, "UNKNOWN"), f"HTTP {http_status}"
    message = str(error.get("message") or f"HTTP {http_status}")
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE and detail.get("errorCode"):
            return str(detail["errorCode"]), message
    status = error.get("status")
    return _BY_STATUS.get(status, _BY_HTTP.get(http_status, "UNKNOWN")), message


# Messages handed to the sending loop at a time: sending starts once this many are built, so a
# caller building messages from a generator overlaps its work with the network's.
STREAM_CHUNK = 50


def send_each(messages: Iterable[PushMessage]) -> list[PushResult]:
    """Send every message (one FCM request each, FCM_SEND_CONCURRENCY at a time); one PushResult
    per message, in order. `messages` may be a generator: each STREAM_CHUNK messages go out as
    soon as they are built. A failure outside FCM's answer (token endpoint down, bad
    credentials, network) is an UNAVAILABLE result, so the caller retries it."""
    if not enabled():
        raise FcmNotConfigured("FCM_ENABLED is false")
    sender = _sender()
    try:
        token = sender.access_token()
    except Exception as exc:  # token endpoint down, bad credentials: every push retries later
        messages = list(messages)
        logger.warning("fcm access token unavailable", extra={"error": type(exc).__name__, "n": len(messages)})
        return [PushResult(ok=False, code="UNAVAILABLE", detail=f"access token: {exc}"[:300]) for _ in messages]
    headers = {**sender.service._fcm_headers, **sender.request_headers, "Authorization": f"Bearer {token}",
               "Content-Type": "application/json; UTF-8"}
    results: list[PushResult | None] = []
    in_flight: list[tuple[list[int], Future]] = []
    bodies: list[str] = []
    positions: list[int] = []

    def hand_over():
        in_flight.append((positions[:], asyncio.run_coroutine_threadsafe(sender.post_all(bodies[:], headers), sender.loop)))
        bodies.clear()
        positions.clear()

    for i, message in enumerate(messages):
        results.append(None)
        try:
            bodies.append(json.dumps(sender.service._message_data(_to_message(message), False)))
            positions.append(i)
        except ValueError as exc:  # firebase-admin's own validation (a bad token or field)
            results[i] = PushResult(ok=False, code="INVALID_ARGUMENT", detail=str(exc)[:500])
        if len(bodies) >= STREAM_CHUNK:
            hand_over()
    if bodies:
        hand_over()
    for chunk_positions, future in in_flight:
        for i, answer in zip(chunk_positions, future.result()):
            results[i] = _result(answer)
    unavailable = [r for r in results if not r.ok and r.code == "UNAVAILABLE"]
    if unavailable:
        logger.warning("fcm sends unavailable", extra={"n": len(unavailable), "of": len(results), "detail": unavailable[0].detail})
    return results


def _result(answer) -> PushResult:
    """A PushResult from what _Sender._post gave: an exception outside FCM's answer
    (connection refused, timeout, TLS) is UNAVAILABLE, retried later."""
    if isinstance(answer, BaseException):
        return PushResult(ok=False, code="UNAVAILABLE", detail=f"{type(answer).__name__}: {answer}"[:300])
    status, data, retry_after = answer
    try:
        body = json.loads(data) if data else None
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict) and body.get("name"):
        return PushResult(ok=True, message_id=body["name"])
    code, detail = error_code(status, body)
    return PushResult(ok=False, code=code, detail=detail[:500], retry_after_s=_retry_after(retry_after))


def reset() -> None:
    """Forget the app (tests switch settings between stand-ins)."""
    with _lock:
        _forget()


@atexit.register
def _close_at_exit() -> None:
    """Close this process's session (its connections) on the way out, quietly."""
    if _state["pid"] == os.getpid() and _state["sender"] is not None:
        try:
            reset()
        except Exception:
            logger.debug("fcm sender not closed cleanly at exit", exc_info=True)


def _forget() -> None:
    if _state["sender"] is not None:
        _state["sender"].close()
    _delete(_state["app"])
    _state.update(signature=None, app=None, sender=None)


def _delete(app) -> None:
    """Drop a firebase app. Its messaging service closes an async client with asyncio.run(),
    which fails inside a thread that has an event loop; the app is then merely forgotten (it has
    a unique name, so nothing collides)."""
    if app is None:
        return
    import firebase_admin

    try:
        firebase_admin.delete_app(app)
    except Exception:
        logger.debug("firebase app not closed cleanly", exc_info=True)
