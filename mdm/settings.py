"""Settings, read from the environment.

With no environment at all this runs the *embedded default*: SQLite (WAL), an in-memory channel
layer, eager Celery with the periodic jobs run by an in-process scheduler, filesystem storage and
the console email backend. Setting DATABASE_URL / REDIS_URL / EMAIL_URL switches each integration
to its production form. Every variable is parsed by environs, which names the variable when a
value is bad, so a typo fails at start-up instead of at 3 a.m.
"""

import ipaddress
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from environs import Env, EnvError
from marshmallow.validate import OneOf, Regexp

from mdm.secretfile import restrict, write_private

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MDM_VAR_DIR", BASE_DIR / "var"))

env = Env()
# prometheus_client's multiprocess mode (mdm/metrics.py) writes there from the first metric on: a
# one-off command given the service's environment must not fail for want of the directory.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", "")
    if key:
        return key
    # Embedded default: a key generated once and kept, so sessions survive a restart. Created
    # 0o600 and complete, or not at all (mdm.secretfile); the first of two starts at once wins.
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = VAR_DIR / "secret_key"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(50), replace=False)
    restrict(path)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
# The public base URL devices and e-mails use (QR payloads, reset links, download URLs).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

DATABASE_URL = env.str("DATABASE_URL", "")
REDIS_URL = env.str("REDIS_URL", "")
EMBEDDED = not DATABASE_URL and not REDIS_URL

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "csp",
    "channels",
    "django_celery_beat",
    "axes",
    "mdm",
    "accounts",
    "enrollment",
    "devices",
    "commands",
    "apks",
    "mdm.alerts",
]
# The dev and benchmark tools (loadtest/: fleet simulator, FCM stand-in, the naive benchmark
# view): on in the embedded default and under pytest, off in production (DATABASE_URL or
# REDIS_URL set) unless DEV_TOOLS=1. `make bench` sets it; docker-compose does not.
DEV_TOOLS = env.bool("DEV_TOOLS", EMBEDDED or "pytest" in sys.modules)
if DEV_TOOLS:
    INSTALLED_APPS.append("loadtest")

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "mdm.middleware.RequestLogMiddleware",
    "mdm.middleware.UnnamablePathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns django-axes's lockout flag into the lockout answer (accounts.limits); last, as axes asks.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "mdm.urls"
WSGI_APPLICATION = "mdm.wsgi.application"
ASGI_APPLICATION = "mdm.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mdm.context_processors.console",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {"default": env.dj_db_url("DATABASE_URL")}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's psycopg pool: opening a connection per request costs ~10 ms (85 req/s measured).
        if env.bool("DB_POOL", True):
            DATABASES["default"]["CONN_MAX_AGE"] = 0
            # Each connection is checked as the pool hands it out (one empty query), so after a
            # PostgreSQL restart no request or task is given a dead one: Celery workers keep their
            # pools from task to task (mdm/celery.py), the web from request to request.
            DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
            DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
                "min_size": env.int("DB_POOL_MIN", 2),
                "max_size": env.int("DB_POOL_MAX", 20),
                "timeout": env.float("DB_POOL_TIMEOUT", 10.0),
            }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "mdm.sqlite3",
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url_for_worker(url: str) -> str:
    # Parallel test workers (pytest-xdist) each get their own Redis database so that one
    # worker's cache.clear() cannot wipe another's state.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker.startswith("gw"):
        return url
    base, _, _db = url.rpartition("/")
    return f"{base}/{1 + int(worker[2:]) % 15}"


REDIS_URL = _redis_url_for_worker(REDIS_URL)

# Prefix of every key this deployment writes to Redis (cache, channel layer). A test run gets one
# of its own, inherited by the server and worker processes it starts, so that runs sharing a Redis
# never see (or clear) each other's keys.
CACHE_PREFIX = env.str("CACHE_PREFIX", "mdm")
if "pytest" in sys.modules and "CACHE_PREFIX" not in os.environ:
    CACHE_PREFIX = f"mdmtest{os.getpid()}"
    os.environ["CACHE_PREFIX"] = CACHE_PREFIX

# --- Cache, channel layer, Celery -----------------------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_PREFIX,
            # Wait for a free connection instead of failing when a burst takes all of them.
            "OPTIONS": {"pool_class": "redis.BlockingConnectionPool", "max_connections": env.int("REDIS_POOL_MAX", 200), "timeout": 5},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CACHE_PREFIX},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True

# Command fan-out has a queue (and in docker-compose a worker, `dispatcher`) of its own.
CELERY_TASK_ROUTES = {"commands.tasks.dispatch_command": {"queue": "push"},
                      "commands.tasks.push_policy_sync": {"queue": "push"}}
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Run the periodic jobs inside the web process (embedded default only).
EMBEDDED_SCHEDULER = env.bool("EMBEDDED_SCHEDULER", EMBEDDED)

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", 3600)
# Self-service registration: off unless asked for. A registered account can do nothing (it
# cannot sign in) until an admin approves it and picks its role; REGISTRATION_DEFAULT_ROLE is the
# role the approval form and API offer when the admin names none.
REGISTRATION_OPEN = env.bool("REGISTRATION_OPEN", False)
REGISTRATION_DEFAULT_ROLE = env.str(
    "REGISTRATION_DEFAULT_ROLE", "viewer", validate=OneOf(["viewer", "operator", "admin"])
)
# django-axes first: it refuses a locked-out username+IP before any password is checked; then the
# per-IP failure limit (accounts/limits.py); then the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.limits.ClientIPFailureBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Reverse proxies whose X-Forwarded-For is believed (mdm/clientip.py): CIDRs or addresses.
# Empty: REMOTE_ADDR is the client. docker-compose sets its nginx's network.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", [])
try:
    from mdm.clientip import parse_networks

    parse_networks(TRUSTED_PROXIES)
except ValueError as exc:
    raise EnvError(f'Environment variable "TRUSTED_PROXIES" invalid: {exc}') from None

# Sign-in lockout (django-axes) on the console login, /admin/login/ and POST /api/v1/auth/token.
# Locked per username AND client IP: an attacker's failures lock out only themselves, never the
# real user signing in from elsewhere (a per-username lockout would let anyone lock any account).
# Spraying many usernames from one IP is held by LOGIN_IP_FAILURE_RATE below.
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins need no table of their own
AXES_CLIENT_IP_CALLABLE = "mdm.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.limits.lockout_response"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
# Failed sign-ins per client IP across all usernames (django-ratelimit syntax), and the limits on
# the two forms that send mail or create rows for anyone.
_RATE = Regexp(r"^[1-9][0-9]*/[0-9]*[smhd]$", error="a rate such as 30/15m or 5/h")
LOGIN_IP_FAILURE_RATE = env.str("LOGIN_IP_FAILURE_RATE", "30/15m", validate=_RATE)
PASSWORD_RESET_RATE = env.str("PASSWORD_RESET_RATE", "5/h", validate=_RATE)
REGISTRATION_RATE = env.str("REGISTRATION_RATE", "5/h", validate=_RATE)
# django-ratelimit's key="ip" (the per-IP enrollment limit included) goes through the same function.
RATELIMIT_IP_META_KEY = "mdm.clientip.client_ip_for_limits"

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, plus the credential stamp check (accounts/tokens.py)
        "accounts.tokens.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Scoped keys for automation (Authorization: Api-Key ...): no role, only their scopes.
        "accounts.apikeys.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.IsViewer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "mdm.api.exception_handler",
    # JSON nested past mdm.parsers.MAX_JSON_DEPTH is a 400, not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "mdm.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", 7)),
    "UPDATE_LAST_LOGIN": False,
    # A refresh token works once: refreshing returns a new one and blacklists the old
    # (rest_framework_simplejwt.token_blacklist). Every token also carries the user's credential
    # stamp, so a password change or a deactivation ends all of them at once (accounts/tokens.py).
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "TOKEN_OBTAIN_SERIALIZER": "accounts.tokens.TokenObtainSerializer",
    "TOKEN_REFRESH_SERIALIZER": "accounts.tokens.TokenRefreshSerializer",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MDM API",
    "DESCRIPTION": "Admin automation API and device protocol v1 (see PROTOCOL.md).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs page map every endpoint: for signed-in users (JWT or session).
    "SERVE_PERMISSIONS": ["accounts.permissions.IsViewer"],
    # Swagger UI from drf-spectacular-sidecar's static files (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Static, media, storage -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", BASE_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# With no collectstatic step (embedded default), WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", True)
# Where stored files (APK releases) live, through django-storages: file:///path (the default:
# VAR_DIR/media) or any S3-compatible store, s3://bucket/prefix?endpoint_url=...&region=...
# (&addressing_style=path|virtual). S3 credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or
# the same names with _FILE holding a path to a file with the value (docker secrets); neither:
# boto3's own chain (instance role, ~/.aws). Parsed by mdm.storage_url, which names what is wrong.
STORAGE_URL = env.str("STORAGE_URL", f"file://{VAR_DIR / 'media'}")
try:
    from mdm.storage_url import parse_storage_url

    _storage = parse_storage_url(STORAGE_URL, os.environ)
except ValueError as exc:
    raise EnvError(f'Environment variable "STORAGE_URL" invalid: {exc}') from None
MEDIA_ROOT = _storage.media_root or VAR_DIR / "media"
MEDIA_URL = "/media/"
STORAGES = {
    "default": _storage.django_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- APK releases and uploads (apks/, docs/apks.md) ------------------------------------------
# tus uploads: the largest APK accepted, where partial uploads are staged on disk (shared by web
# and worker: the worker parses the finished file), and how long an unfinished upload is kept.
APK_UPLOAD_MAX_BYTES = env.int("APK_UPLOAD_MAX_BYTES", 1024**3)
APK_UPLOAD_DIR = env.path("APK_UPLOAD_DIR", VAR_DIR / "uploads")
APK_UPLOAD_EXPIRY_S = env.int("APK_UPLOAD_EXPIRY_S", 24 * 3600)
# Release retention: the newest N per package and channel are kept (never one an install_apk
# still waits for, nor the agent release).
APK_KEEP_RELEASES = env.int("APK_KEEP_RELEASES", 5)
# Device downloads from an object store: a pre-signed URL valid this long.
APK_DOWNLOAD_URL_TTL_S = env.int("APK_DOWNLOAD_URL_TTL_S", 300)
# Set (e.g. /protected-apks/) when nginx serves the files: the web answers with X-Accel-Redirect
# to this internal location + the file's name instead of streaming it (deploy/nginx.conf).
APK_ACCEL_REDIRECT_PREFIX = env.str("APK_ACCEL_REDIRECT_PREFIX", "")
APK_CHANNELS = env.list("APK_CHANNELS", ["stable", "beta"])
for _name, _value in (("APK_UPLOAD_MAX_BYTES", APK_UPLOAD_MAX_BYTES), ("APK_UPLOAD_EXPIRY_S", APK_UPLOAD_EXPIRY_S),
                      ("APK_KEEP_RELEASES", APK_KEEP_RELEASES), ("APK_DOWNLOAD_URL_TTL_S", APK_DOWNLOAD_URL_TTL_S)):
    if _value < 1:
        raise EnvError(f'Environment variable "{_name}" invalid: must be at least 1')
if APK_ACCEL_REDIRECT_PREFIX and not (APK_ACCEL_REDIRECT_PREFIX.startswith("/") and APK_ACCEL_REDIRECT_PREFIX.endswith("/")):
    raise EnvError('Environment variable "APK_ACCEL_REDIRECT_PREFIX" invalid: a path that starts and ends with /')
if not APK_CHANNELS or any(not c.isidentifier() or len(c) > 32 for c in APK_CHANNELS) or "stable" not in APK_CHANNELS:
    raise EnvError('Environment variable "APK_CHANNELS" invalid: comma-separated names (letters, digits, _), stable among them')

# --- Email ----------------------------------------------------------------------------------
if "EMAIL_URL" in os.environ:
    globals().update(env.dj_email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "mdm@localhost")
ALERT_EMAILS = env.list("ALERT_EMAILS", [])
# A policy change moving at most this many devices is also told by a `sync` push (at once); a larger
# one reaches devices by their heartbeats, spread over one interval (commands.policies.services).
POLICY_SYNC_PUSH_MAX = env.int("POLICY_SYNC_PUSH_MAX", 200)
# Alerting (docs/alerts.md): how often every rule is evaluated, how long a group of alerts of one
# rule collects before its one notification goes, the low-severity digest's period, and when
# fire/resolve cycles count as flapping.
ALERT_SWEEP_S = env.int("ALERT_SWEEP_S", 5)
ALERT_NUDGE_S = env.float("ALERT_NUDGE_S", 2.0)  # at most one flush-fed evaluation per family this often
ALERT_GROUP_WAIT_S = env.int("ALERT_GROUP_WAIT_S", 10)
ALERT_GROUP_QUIET_S = env.int("ALERT_GROUP_QUIET_S", 3)  # the group stays open this long after its last alert joined
ALERT_GROUP_MAX_S = env.int("ALERT_GROUP_MAX_S", 60)  # ... but never longer than this after its first
ALERT_DIGEST_S = env.int("ALERT_DIGEST_S", 3600)
ALERT_FLAP_FIRES = env.int("ALERT_FLAP_FIRES", 3)
ALERT_FLAP_WINDOW_S = env.int("ALERT_FLAP_WINDOW_S", 3600)

# --- Integrations ---------------------------------------------------------------------------
FCM_ENABLED = env.bool("FCM_ENABLED", False)
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", "")
FCM_PROJECT_ID = env.str("FCM_PROJECT_ID", "")
# Override of the messaging endpoint (the local FCM stand-in in dev, tests and benchmarks).
FCM_SEND_URL = env.str("FCM_SEND_URL", "")
# Pushes in flight at once per worker process (one HTTP request each; FCM v1 has no batch call).
FCM_SEND_CONCURRENCY = env.int("FCM_SEND_CONCURRENCY", 32)
# Key for secret command params (Wi-Fi passwords) and command keys at rest: Fernet keys, comma-
# separated (the first encrypts, all decrypt). Only the embedded default may leave it unset (then
# derived from SECRET_KEY): elsewhere the start fails, so a production server never ties its
# ciphertexts to SECRET_KEY without saying so.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", "")
if "pytest" in sys.modules and not FIELD_ENCRYPTION_KEY:
    # A bare `pytest` (make test sets it): a test-only key, inherited by the processes tests start.
    FIELD_ENCRYPTION_KEY = os.environ["FIELD_ENCRYPTION_KEY"] = "dGVzdC1vbmx5LWZpZWxkLWtleS1ub3QtZm9yLXByb2Q="


def _check_field_encryption_key(value: str) -> None:
    from cryptography.fernet import Fernet

    if not value.strip():
        if EMBEDDED:
            return
        raise EnvError(
            'Environment variable "FIELD_ENCRYPTION_KEY" must be set outside the embedded default. Make one with: '
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'. "
            "A server that ran without it encrypted with a key derived from SECRET_KEY: put that one after the new "
            "key (`SECRET_KEY=... python -m commands.crypto derived-key` prints it) so what is stored stays readable."
        )
    for key in value.split(","):
        try:
            Fernet(key.strip())
        except (ValueError, TypeError):
            raise EnvError('Environment variable "FIELD_ENCRYPTION_KEY" invalid: each comma-separated key must be a Fernet key '
                           "(32 bytes, URL-safe base64).") from None


_check_field_encryption_key(FIELD_ENCRYPTION_KEY)
# Heartbeats go to Redis and reach PostgreSQL in one batch a second (devices.writebehind); only
# with Redis. Off: one PostgreSQL statement per heartbeat.
HEARTBEAT_WRITE_BEHIND = env.bool("HEARTBEAT_WRITE_BEHIND", True)
RESULT_WRITE_BEHIND = env.bool("RESULT_WRITE_BEHIND", True)  # commands.results
POLICY_REPORT_WRITE_BEHIND = env.bool("POLICY_REPORT_WRITE_BEHIND", True)  # commands.policies.reports
# A flush's claim older than this is a dead flusher's: the next flush puts it back in the queue.
WRITE_BEHIND_CLAIM_STALE_S = env.float("WRITE_BEHIND_CLAIM_STALE_S", 30.0)
# Route the benchmarks' naive baseline view (make bench only; never in production).
BENCH_NAIVE_VIEW = env.bool("BENCH_NAIVE_VIEW", False)
if BENCH_NAIVE_VIEW and not DEV_TOOLS:
    raise EnvError('Environment variable "BENCH_NAIVE_VIEW" needs DEV_TOOLS=1: the view is one of the dev tools (loadtest/).')

# --- Security -------------------------------------------------------------------------------
# Served over TLS whenever the public URL is https (SECURE_SSL=true forces it otherwise): a
# deployment that names an https URL but forgot a second switch ran with cookies that travel in
# clear text and no HSTS. The TLS terminator (deploy/nginx.conf) sets X-Forwarded-Proto.
SECURE_SSL = env.bool("SECURE_SSL", False) or PUBLIC_BASE_URL.startswith("https://")
if SECURE_SSL:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no
# inline script or style, no eval (static/js/htmx-config.js turns htmx's eval features off).
# connect-src names the WebSocket origin as well as 'self' (older browsers do not count ws: as
# 'self'); img-src allows data: for the QR builder's PNG download link.
_public = urlsplit(PUBLIC_BASE_URL)
_WS_ORIGIN = f"{'wss' if _public.scheme == 'https' else 'ws'}://{_public.netloc}"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", _WS_ORIGIN],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# /metrics: a bearer token (METRICS_TOKEN), or the scraper's own address (METRICS_ALLOWED_IPS,
# addresses or networks, matched against the TCP peer, never a forwarded header). Closed when
# neither is set, except in the embedded default, where the loopback may scrape.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", ["127.0.0.0/8", "::1/128"] if EMBEDDED else [])
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(n.strip(), strict=False) for n in METRICS_ALLOWED_IPS if n.strip()]
except ValueError as exc:
    raise EnvError(f'Environment variable "METRICS_ALLOWED_IPS" invalid: {exc}') from None
# A Celery service's own /metrics port (compose: 9100 for worker and dispatcher); 0 serves none.
METRICS_PORT = env.int("METRICS_PORT", 0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # PROTOCOL.md: bodies over 1 MiB get 413

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging: one JSON object per line ------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", "INFO", validate=OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]))
# Device requests get a line of their own when not 2xx, slower than LOG_SLOW_MS or from a traced
# device (manage.py trace_device); `all` logs every one (mdm.requestlog, docs/performance.md).
LOG_DEVICE_REQUESTS = env.str("LOG_DEVICE_REQUESTS", "notable", validate=OneOf(["notable", "all"]))
LOG_SLOW_MS = env.float("LOG_SLOW_MS", 250.0)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    # Queued: a request thread never waits for a write to stderr (mdm.logqueue).
    "handlers": {"stdout": {"class": "mdm.logqueue.QueuedStreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Our own request line replaces Django's and daphne's access logs.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        # Every periodic task's success (several a second) is noise; failures are still logged.
        "celery.app.trace": {"level": "WARNING"},
    },
}
