"""The one module that talks to Firebase Cloud Messaging, through firebase-admin.

Configuration (mdm/settings.py): FCM_ENABLED, FCM_CREDENTIALS_FILE (a service-account JSON),
FCM_PROJECT_ID (defaults to the JSON's project_id) and FCM_SEND_URL. Pointing it at the local
stand-in (mdm/fcm_standin.py) takes two overrides and nothing else:

- the service account's `token_uri` (in the JSON the stand-in writes), which google-auth uses for
  the OAuth2 JWT-bearer grant;
- the messaging service's send URL, `_MessagingService._fcm_url`, a private attribute of
  firebase-admin, which is why firebase-admin is pinned exactly (7.7.0). `_check_pin` fails
  loudly at start if an upgrade moves it.

`send_each` is firebase-admin's: one HTTP request per message through a thread pool, at most
500 messages per call; we chunk longer lists.
"""

import email.utils
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_TTL_S = 2_419_200  # 28 days, FCM's maximum
PINNED_VERSION = "7.7.0"

_lock = threading.Lock()
_state: dict = {"signature": None, "app": None}
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
        # firebase-admin gives fcm.googleapis.com a 100-connection pool (send_each runs up to
        # 500 requests at once); give the overriding origin the same, with the same retries.
        parts = urlsplit(url)
        service._client.session.mount(
            f"{parts.scheme}://{parts.netloc}",
            requests.adapters.HTTPAdapter(
                pool_connections=100, pool_maxsize=100, max_retries=_http_client.DEFAULT_RETRY_CONFIG
            ),
        )
    return app


def _app():
    signature = (settings.FCM_CREDENTIALS_FILE, settings.FCM_PROJECT_ID, settings.FCM_SEND_URL)
    with _lock:
        if _state["signature"] != signature or _state["app"] is None:
            _delete(_state["app"])
            _state["app"] = _build_app()
            _state["signature"] = signature
        return _state["app"]


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
    """Send, 500 per firebase-admin call; one PushResult per message, in order. A failure of a
    whole call (auth, network) becomes an UNAVAILABLE result for each of its messages."""
    if not enabled():
        raise FcmNotConfigured("FCM_ENABLED is false")
    from firebase_admin import messaging

    app = _app()
    results: list[PushResult] = []
    for start in range(0, len(messages), MAX_BATCH):
        chunk = messages[start : start + MAX_BATCH]
        try:
            batch = messaging.send_each([_to_message(m) for m in chunk], app=app)
        except Exception as exc:  # token endpoint down, bad credentials, ...
            logger.warning("fcm batch failed", extra={"error": type(exc).__name__, "n": len(chunk)})
            results.extend(PushResult(ok=False, code="UNAVAILABLE", detail=str(exc)[:300]) for _ in chunk)
            continue
        for response in batch.responses:
            if response.success:
                results.append(PushResult(ok=True, message_id=response.message_id))
            else:
                exc = response.exception
                results.append(
                    PushResult(ok=False, code=error_code(exc), detail=str(exc)[:500], retry_after_s=_retry_after(exc))
                )
    return results


def reset() -> None:
    """Forget the app (tests switch settings between stand-ins)."""
    with _lock:
        _delete(_state["app"])
        _state.update(signature=None, app=None)


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
