"""The one module that talks to Firebase Cloud Messaging, through firebase-admin.

Configuration (mdm/settings.py): FCM_ENABLED, FCM_CREDENTIALS_FILE (a service-account JSON),
FCM_PROJECT_ID (defaults to the JSON's project_id) and FCM_SEND_URL. Pointing it at the local
stand-in (mdm/fcm_standin.py) takes two overrides and nothing else:

- the service account's `token_uri` (in the JSON the stand-in writes), which google-auth uses for
  the OAuth2 JWT-bearer grant;
- the messaging service's send URL, `_MessagingService._fcm_url`, a private attribute of
  firebase-admin, which is why firebase-admin is pinned exactly (7.7.0). `_check_pin` fails
  loudly at start if an upgrade moves it.

Sending: FCM's HTTP v1 API takes one request per message (it has no batch call any more).
firebase-admin's `send_each` starts a thread per message (500 per call) over a 100-connection
pool, so each call opened ~400 new connections; through requests and google-auth's session a
push cost ~1 ms of CPU (a third of it requests re-reading proxy variables from os.environ), and
2,000 pushes took 6 s on the 2-core bench while the fleet answered. So firebase-admin builds the
credentials (its OAuth2 access token, refreshed only when due), validates and encodes each
message (`_MessagingService._message_data`, pinned), and names the endpoint; the POSTs go out
through one urllib3 pool per process from a persistent, bounded thread pool
(FCM_SEND_CONCURRENCY, default 32): ~0.4 ms of CPU per push (docs/performance.md). FCM's error
bodies are read here: `errorCode` of the FcmError detail, else the RPC status.
"""

import email.utils
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import unquote, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_TTL_S = 2_419_200  # 28 days, FCM's maximum
PINNED_VERSION = "7.7.0"

_lock = threading.Lock()
_state: dict = {"signature": None, "app": None, "sender": None, "pid": None}
_names = count(1)


class _Sender:
    """What one process needs to push: the firebase app, its messaging service, a urllib3 pool
    (through the environment's proxy, if any, read once) and the sending threads."""

    def __init__(self, app):
        import certifi
        import requests.utils
        import urllib3
        from firebase_admin import _http_client, messaging

        self.app = app
        self.service = messaging._get_messaging_service(app)
        _check_pin(self.service)
        url = send_url_for(self.service._project_id)
        if url:
            self.service._fcm_url = url
        self.url = self.service._fcm_url
        n = send_concurrency()
        options = {
            # firebase-admin's own retry policy: 500/503, and 429 with Retry-After, a few times.
            "maxsize": n, "block": True, "retries": _http_client.DEFAULT_RETRY_CONFIG,
            "timeout": urllib3.Timeout(connect=5, read=float(app.options.get("httpTimeout") or 30)),
            "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where(),
        }
        proxy = None
        if not requests.utils.should_bypass_proxies(self.url, None):
            proxies = requests.utils.get_environ_proxies(self.url)
            proxy = proxies.get(urlsplit(self.url).scheme) or proxies.get("all")
        if proxy:
            parts = urlsplit(proxy)
            if parts.username:  # http://user:pass@proxy:3128, as requests accepts it
                auth = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                options["proxy_headers"] = urllib3.make_headers(proxy_basic_auth=auth)
                proxy = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
            self.http = urllib3.ProxyManager(proxy, **options)
        else:
            self.http = urllib3.PoolManager(**options)
        self.threads = ThreadPoolExecutor(n, thread_name_prefix="fcm-send")
        self.token_lock = threading.Lock()

    def access_token(self) -> str:
        """The OAuth2 access token, refreshed only when it is missing or about to expire (once,
        under a lock, whatever the number of sending threads)."""
        import google.auth.transport.requests

        credential = self.app.credential.get_credential()
        if not credential.valid:
            with self.token_lock:
                if not credential.valid:
                    credential.refresh(google.auth.transport.requests.Request())
        return credential.token

    def close(self) -> None:
        self.threads.shutdown(wait=False)
        self.http.clear()


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


def send_each(messages: list[PushMessage]) -> list[PushResult]:
    """Send every message (one FCM request each, FCM_SEND_CONCURRENCY at a time); one PushResult
    per message, in order. A failure outside FCM's answer (token endpoint down, bad credentials,
    network) is an UNAVAILABLE result, so the caller retries it."""
    if not enabled():
        raise FcmNotConfigured("FCM_ENABLED is false")
    sender = _sender()
    try:
        token = sender.access_token()
    except Exception as exc:  # token endpoint down, bad credentials: every push retries later
        logger.warning("fcm access token unavailable", extra={"error": type(exc).__name__, "n": len(messages)})
        return [PushResult(ok=False, code="UNAVAILABLE", detail=f"access token: {exc}"[:300]) for _ in messages]
    headers = {**sender.service._fcm_headers, "Authorization": f"Bearer {token}", "Content-Type": "application/json; UTF-8"}

    def send_one(message: PushMessage) -> PushResult:
        try:
            body = json.dumps(sender.service._message_data(_to_message(message), False))
        except ValueError as exc:  # firebase-admin's own validation (a bad token or field)
            return PushResult(ok=False, code="INVALID_ARGUMENT", detail=str(exc)[:500])
        try:
            response = sender.http.request("POST", sender.url, body=body, headers=headers)
        except Exception as exc:  # connection refused, timeout, TLS: retried later
            return PushResult(ok=False, code="UNAVAILABLE", detail=f"{type(exc).__name__}: {exc}"[:300])
        try:
            answer = json.loads(response.data) if response.data else None
        except ValueError:
            answer = None
        if response.status == 200 and isinstance(answer, dict) and answer.get("name"):
            return PushResult(ok=True, message_id=answer["name"])
        code, detail = error_code(response.status, answer)
        return PushResult(ok=False, code=code, detail=detail[:500], retry_after_s=_retry_after(response.headers.get("Retry-After")))

    results = list(sender.threads.map(send_one, messages))
    unavailable = [r for r in results if not r.ok and r.code == "UNAVAILABLE"]
    if unavailable:
        logger.warning("fcm sends unavailable", extra={"n": len(unavailable), "of": len(messages), "detail": unavailable[0].detail})
    return results


def reset() -> None:
    """Forget the app (tests switch settings between stand-ins)."""
    with _lock:
        _forget()


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
