"""The one module that talks to Firebase Cloud Messaging, through firebase-admin.

Configuration (mdm/settings.py): FCM_ENABLED, FCM_CREDENTIALS_FILE (a service-account JSON),
FCM_PROJECT_ID (defaults to the JSON's project_id) and FCM_SEND_URL. Pointing it at the local
stand-in (mdm/fcm_standin.py) takes two overrides and nothing else:

- the service account's `token_uri` (in the JSON the stand-in writes), which google-auth uses for
  the OAuth2 JWT-bearer grant;
- the messaging service's send URL, `_MessagingService._fcm_url`, a private attribute of
  firebase-admin, which is why firebase-admin is pinned exactly (7.7.0). `_check_pin` fails
  loudly at start if an upgrade moves it.

Sending: FCM's HTTP v1 API takes one request per message. firebase-admin's `send_each` starts a
thread per message (500 per call) over a 100-connection pool, so each call opened ~400 new
connections and spent ~1 ms of CPU per message; 2,000 pushes took 6 s on the 2-core bench while
the fleet answered. We call firebase-admin's `messaging.send` per message from one persistent,
bounded thread pool per process (FCM_SEND_CONCURRENCY, default 32) over a connection pool of the
same size, with requests' per-request environment lookups (proxy variables, read from
os.environ on every request) resolved once when the app is built: ~0.7 ms per message and no
connection churn (docs/performance.md).
"""

import email.utils
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_TTL_S = 2_419_200  # 28 days, FCM's maximum
PINNED_VERSION = "7.7.0"

_lock = threading.Lock()
_state: dict = {"signature": None, "app": None, "pool": None, "pid": None}
_names = count(1)


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

    if not hasattr(service, "_fcm_url"):
        raise FcmNotConfigured(
            f"firebase-admin {firebase_admin.__version__} has no _MessagingService._fcm_url; "
            f"mdm/fcm.py is written for {PINNED_VERSION}"
        )


def _build_app():
    import firebase_admin
    import requests
    from firebase_admin import _http_client, credentials, messaging

    if settings.FCM_CREDENTIALS_FILE:
        cred = credentials.Certificate(settings.FCM_CREDENTIALS_FILE)
    else:
        cred = credentials.ApplicationDefault()
    options = {"httpTimeout": 30}
    if settings.FCM_PROJECT_ID:
        options["projectId"] = settings.FCM_PROJECT_ID
    app = firebase_admin.initialize_app(cred, options, name=f"mdm-fcm-{next(_names)}")
    service = messaging._get_messaging_service(app)
    _check_pin(service)
    url = send_url_for(service._project_id)
    if url:
        service._fcm_url = url
    # One pooled connection per sending thread, with firebase-admin's own retry policy.
    parts = urlsplit(service._fcm_url)
    session = service._client.session
    session.mount(
        f"{parts.scheme}://{parts.netloc}",
        requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=send_concurrency(), max_retries=_http_client.DEFAULT_RETRY_CONFIG
        ),
    )
    # requests reads the proxy variables from os.environ on every request (a third of the CPU
    # per push, cProfile); read them once, here, and honour them the same way.
    session.proxies = {} if requests.utils.should_bypass_proxies(service._fcm_url, None) else requests.utils.get_environ_proxies(service._fcm_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return app


def send_concurrency() -> int:
    return max(1, min(100, int(getattr(settings, "FCM_SEND_CONCURRENCY", 32))))


def _app():
    signature = (settings.FCM_CREDENTIALS_FILE, settings.FCM_PROJECT_ID, settings.FCM_SEND_URL, send_concurrency())
    with _lock:
        if _state["pid"] != os.getpid():  # forked (a Celery child): threads do not survive a fork
            _state.update(signature=None, app=None, pool=None, pid=os.getpid())
        if _state["signature"] != signature or _state["app"] is None:
            _delete(_state["app"])
            _state["app"] = _build_app()
            _state["signature"] = signature
            if _state["pool"] is not None:
                _state["pool"].shutdown(wait=False)
            _state["pool"] = ThreadPoolExecutor(send_concurrency(), thread_name_prefix="fcm-send")
        return _state["app"], _state["pool"]


def warm_up() -> None:
    """Build the app (credentials, HTTP session, thread pool) before the first push needs it:
    ~0.5 s per process otherwise paid by the first fan-out (Celery's worker_process_init)."""
    if enabled():
        try:
            _app()
        except Exception:  # a broken configuration shows on the first send, with its reason
            logger.warning("fcm warm-up failed", exc_info=True)


def _to_message(m: PushMessage):
    from firebase_admin import messaging

    return messaging.Message(
        token=m.token,
        data={str(k): str(v) for k, v in m.data.items()},
        android=messaging.AndroidConfig(
            priority="high", ttl=timedelta(seconds=max(0, min(int(m.ttl_s), MAX_TTL_S))), collapse_key=m.collapse_key
        ),
    )


def _retry_after(exc) -> float | None:
    response = getattr(exc, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_code(exc) -> str:
    """The FCM error code of a firebase-admin exception (FCM's errorCode when present)."""
    from firebase_admin import exceptions, messaging

    for cls, code in (
        (messaging.UnregisteredError, "UNREGISTERED"),
        (messaging.QuotaExceededError, "QUOTA_EXCEEDED"),
        (messaging.SenderIdMismatchError, "SENDER_ID_MISMATCH"),
        (messaging.ThirdPartyAuthError, "THIRD_PARTY_AUTH_ERROR"),
        (exceptions.UnavailableError, "UNAVAILABLE"),
        (exceptions.InvalidArgumentError, "INVALID_ARGUMENT"),
        (exceptions.InternalError, "INTERNAL"),
        (exceptions.ResourceExhaustedError, "QUOTA_EXCEEDED"),
        (exceptions.UnauthenticatedError, "UNAUTHENTICATED"),
        (exceptions.PermissionDeniedError, "PERMISSION_DENIED"),
        (exceptions.NotFoundError, "UNREGISTERED"),
        (exceptions.DeadlineExceededError, "UNAVAILABLE"),
    ):
        if isinstance(exc, cls):
            return code
    return "UNKNOWN"


def send_each(messages: list[PushMessage]) -> list[PushResult]:
    """Send every message (one FCM request each, FCM_SEND_CONCURRENCY at a time); one PushResult
    per message, in order. A failure outside FCM's answer (token endpoint down, bad credentials,
    network) is an UNAVAILABLE result, so the caller retries it."""
    if not enabled():
        raise FcmNotConfigured("FCM_ENABLED is false")
    from firebase_admin import exceptions, messaging

    app, pool = _app()

    def send_one(message: PushMessage) -> PushResult:
        try:
            return PushResult(ok=True, message_id=messaging.send(_to_message(message), app=app))
        except exceptions.FirebaseError as exc:
            return PushResult(ok=False, code=error_code(exc), detail=str(exc)[:500], retry_after_s=_retry_after(exc))
        except Exception as exc:  # token endpoint down, bad credentials, ...
            return PushResult(ok=False, code="UNAVAILABLE", detail=f"{type(exc).__name__}: {exc}"[:300])

    try:
        # Refresh the OAuth token here, once, rather than in every sending thread at once.
        app.credential.get_access_token()
    except Exception:  # token endpoint down: each send reports it (UNAVAILABLE) and is retried
        logger.warning("fcm access token refresh failed", exc_info=True)
    results = list(pool.map(send_one, messages))
    failed_whole = sum(1 for r in results if not r.ok and r.code == "UNAVAILABLE")
    if failed_whole:
        logger.warning("fcm sends unavailable", extra={"n": failed_whole, "of": len(messages), "detail": next(
            r.detail for r in results if not r.ok and r.code == "UNAVAILABLE")})
    return results


def reset() -> None:
    """Forget the app (tests switch settings between stand-ins)."""
    with _lock:
        _delete(_state["app"])
        if _state["pool"] is not None:
            _state["pool"].shutdown(wait=False)
        _state.update(signature=None, app=None, pool=None)


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
