"""Inboxerr settings.

Every value comes from the environment (documented in `.env.example`); production differs from
development only by environment variables. A value that cannot be parsed stops the process at
start with a message naming the variable, rather than running with a surprise.
"""

import ipaddress
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


class _SetVariables(Mapping):
    """The environment without its empty values. `.env.example` lists every variable as NAME= for
    the operator to fill in; a copy of it must mean "the defaults", not "an empty path, an empty
    host list, a number that does not parse"."""

    def __getitem__(self, name: str) -> str:
        value = os.environ[name]
        if not value.strip():
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name, value in os.environ.items() if value.strip())

    def __len__(self) -> int:
        return sum(1 for _ in self)


env = environ.Env()
env.ENVIRON = _SetVariables()

logger = logging.getLogger("inboxerr.settings")


def _env(name: str, cast, default):
    """Read one variable with django-environ, naming it when its value is invalid."""
    try:
        return cast(name, default=default)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Invalid value for environment variable {name}: {exc}") from exc


def _env_bool(name: str, default: bool) -> bool:
    # django-environ turns any unknown word into False; an operator who typed DEBUG=ture
    # deserves an error, not a silent False.
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"Invalid value for environment variable {name}: {raw!r} is not a boolean")


def _env_positive_int(name: str, default: int) -> int:
    value = _env(name, env.int, default)
    if value <= 0:
        raise ImproperlyConfigured(f"Invalid value for environment variable {name}: must be positive, got {value}")
    return value


# --- Django basics -------------------------------------------------------------------------------

DEBUG = _env_bool("DEBUG", False)
# The key signs sessions, CSRF tokens and one-click unsubscribe links: a key anyone can read in this
# file would let anyone forge them, so only a development server (DEBUG) may run without one, and
# a server with DEBUG off refuses a key that Django's own deploy check (W009) calls weak.
_DEV_SECRET_KEY = "inboxerr-dev-only-insecure-key-do-not-use-in-production"
_NEW_KEY_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
SECRET_KEY = env.str("SECRET_KEY", default="").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set: set the environment variable SECRET_KEY to a long random value "
            f"({_NEW_KEY_HINT}), or DEBUG=true for development"
        )
    SECRET_KEY = _DEV_SECRET_KEY
    warnings.warn("SECRET_KEY is not set: using the development key (DEBUG is on).", stacklevel=1)
elif not DEBUG:
    if SECRET_KEY == _DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            f"SECRET_KEY is the development key written in inboxerr/settings.py, which anyone can read: "
            f"set a long random value ({_NEW_KEY_HINT})"
        )
    if (len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
            or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)):
        raise ImproperlyConfigured(
            f"SECRET_KEY is too weak for a server with DEBUG off: it needs at least {SECRET_KEY_MIN_LENGTH} "
            f"characters, at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and not the "
            f"'{SECRET_KEY_INSECURE_PREFIX}' prefix of a generated development key ({_NEW_KEY_HINT})"
        )
ALLOWED_HOSTS = _env("ALLOWED_HOSTS", env.list, ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _env("CSRF_TRUSTED_ORIGINS", env.list, [])

# --- HTTPS and proxies -----------------------------------------------------------------------------

# Absolute base URL for links in messages (unsubscribe), and the site's scheme: an https:// site
# turns on secure cookies, the HTTP-to-HTTPS redirect and HSTS unless a variable below says otherwise.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("Invalid value for environment variable SITE_URL: must be an http(s) URL")
_HTTPS = SITE_URL.startswith("https://")


def _proxy_ssl_header() -> tuple[str, str] | None:
    # A proxy that ends TLS tells Django so in a header; trusting one the proxy does not always set
    # (or strip) would let a client claim HTTPS, so it is off until the operator names it.
    raw = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
    if not raw:
        return None
    header, _, value = raw.partition(",")
    header = header.strip().upper().replace("-", "_")
    if not header.startswith("HTTP_"):
        header = f"HTTP_{header}"
    if not header[5:] or not all(c.isalnum() or c == "_" for c in header):
        raise ImproperlyConfigured(
            f"Invalid value for environment variable SECURE_PROXY_SSL_HEADER: {raw!r} is not a header name "
            "(e.g. HTTP_X_FORWARDED_PROTO, or HTTP_X_FORWARDED_PROTO,https)"
        )
    return header, value.strip() or "https"


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()
# Reverse proxies in front of Inboxerr that append the client's address to X-Forwarded-For. 0: the
# client is REMOTE_ADDR and X-Forwarded-For is ignored (a client could write anything there).
NUM_PROXIES = _env("NUM_PROXIES", env.int, 0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured(f"Invalid value for environment variable NUM_PROXIES: must be 0 or more, got {NUM_PROXIES}")
SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", _HTTPS)
# Probes and scrapers often call the web process over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", _HTTPS)
CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", _HTTPS)
SECURE_HSTS_SECONDS = _env("SECURE_HSTS_SECONDS", env.int, 31_536_000 if _HTTPS else 0)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("Invalid value for environment variable SECURE_HSTS_SECONDS: must be 0 or more")
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _HTTPS)
SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", False)
# Preloading asks the browsers to ship the domain as HTTPS-only, for months, subdomains included:
# the domain owner's decision, not a default. Until it is made, `check --deploy` need not ask.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

INSTALLED_APPS = [
    "daphne",  # first: `runserver` then serves ASGI (HTTP and the live-progress WebSockets)
    "django.contrib.admin",
    "inboxerr.apps.UsersConfig",  # django.contrib.auth, named for the console
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "inboxerr.apps.KnoxConfig",  # knox, named for the console
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "import_export",
    "axes",
    "csp",
    "inboxerr",
    "audit",
    "subscribers",
    "imports",
    "campaigns",
    "inboxerr.webhooks",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "inboxerr.middleware.UnstorableInputMiddleware",
    "inboxerr.middleware.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every response (django-csp): scripts, styles, images and connections
# from this site only, so nothing is loaded from a CDN and an injected <script> does not run. The
# console's scripts and styles are static files (no inline code); the API docs are Swagger UI from
# drf-spectacular-sidecar with its start-up script served as a file (SpectacularSwaggerSplitView).
# 'self' covers the job pages' WebSocket (ws:// or wss:// to the same host) in current browsers.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Swagger UI's and the admin's icons are data: URIs in their stylesheets.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "inboxerr.urls"
WSGI_APPLICATION = "inboxerr.wsgi.application"
ASGI_APPLICATION = "inboxerr.asgi.application"
# Live progress (/ws/jobs/<id>/): how often a connection re-reads its job.
PROGRESS_POLL_SECONDS = _env("PROGRESS_POLL_SECONDS", env.float, 1.0)

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
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------------

_database_url = env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'inboxerr.sqlite3'}"
if _database_url.split("://", 1)[0] not in ("postgres", "postgresql", "pgsql", "sqlite"):
    raise ImproperlyConfigured(
        "Invalid value for environment variable DATABASE_URL: use postgres://user:pass@host:port/name or sqlite:///path"
    )
DATABASES = {"default": _env("DATABASE_URL", lambda _name, default: env.db_url_config(default), _database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: web and worker share one file. WAL lets readers run beside the
    # writer; IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", _env("DATABASE_CONN_MAX_AGE", env.int, 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker ----------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    "name": "inboxerr",
    "workers": _env_positive_int("Q_WORKERS", 2),
    "timeout": _env_positive_int("Q_TIMEOUT_SECONDS", 3600),
    # Must exceed timeout; a task is handed out again only after this many seconds.
    "retry": _env_positive_int("Q_TIMEOUT_SECONDS", 3600) + 300,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Background tasks",  # the admin section of django-q2's models
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

# A worker is reported healthy when its heartbeat is younger than this.
WORKER_HEARTBEAT_MAX_AGE = timedelta(seconds=_env_positive_int("WORKER_HEARTBEAT_MAX_AGE_SECONDS", 180))

# --- Auth ----------------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

API_TOKEN_TTL = timedelta(days=_env_positive_int("API_TOKEN_TTL_DAYS", 90))
REST_KNOX = {
    "TOKEN_TTL": API_TOKEN_TTL,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

LOGIN_URL = "admin:login"

# Login lockout (django-axes): AXES_FAILURE_LIMIT wrong passwords for one username from one address
# lock that pair out for AXES_COOLOFF_MINUTES; `manage.py axes_reset` lifts every lockout at once.
# Attempts are rows in the database, so every web process sees the same count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _env_positive_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=_env_positive_int("AXES_COOLOFF_MINUTES", 15))
# Username and address together: a guesser elsewhere cannot lock a colleague out of their account.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/lockout.html"
AXES_LOCKOUT_CALLABLE = "inboxerr.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "inboxerr.throttling.client_ip"
# Keep the console's "Access attempts" to failures; a row per successful login adds nothing there.
AXES_DISABLE_ACCESS_LOG = True

# --- REST API ------------------------------------------------------------------------------------

API_MAX_PAGE_SIZE = _env_positive_int("API_MAX_PAGE_SIZE", 200)
# Largest request body an API route accepts, in bytes, refused (413) before it is read; the batch
# API (BATCH_MAX_BYTES) and the routes that import files or records (IMPORT_MAX_BYTES) have their own.
API_MAX_BODY_BYTES = _env_positive_int("API_MAX_BODY_BYTES", 1024 * 1024)


def _env_rate(name: str, default: str) -> str:
    # DRF's own format, checked at start rather than at the first request: "6000/min", "20/s".
    value = env.str(name, default=default).strip()
    number, _, period = value.partition("/")
    if not (number.isdigit() and int(number) > 0 and period[:1] in ("s", "m", "h", "d")):
        raise ImproperlyConfigured(
            f"Invalid value for environment variable {name}: {value!r} is not a rate like 6000/min, 100/s, 1000/hour"
        )
    return value


# Requests per API token or logged-in user. Bulk work comes in few large calls (10,000 subscribers,
# 100,000 batch items, a whole CSV per request), so this only stops a runaway loop: 100 calls a
# second is more than a sequential script makes, and paging a million-row list (200 a page) still
# runs at full speed.
API_THROTTLE_USER = _env_rate("API_THROTTLE_USER", "6000/min")
# Requests per client address without valid credentials: the open routes (the schema) and every
# failed authentication (a wrong or expired token). Once over it, the address's calls with a token
# are refused too until the window frees up, so guessing tokens gets nowhere.
API_THROTTLE_ANON = _env_rate("API_THROTTLE_ANON", "60/min")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header is what turns an anonymous call into a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inboxerr.throttling.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The rates are read from API_THROTTLE_* at each request (inboxerr/throttling.py); the counts
    # live in the default cache (Redis with REDIS_URL, shared by every process).
    "DEFAULT_THROTTLE_CLASSES": [
        "inboxerr.throttling.UserRateThrottle",
        "inboxerr.throttling.AnonRateThrottle",
    ],
    "NUM_PROXIES": NUM_PROXIES,
    "DEFAULT_PERMISSION_CLASSES": ["inboxerr.permissions.HasModelPermissions"],
    # Strict JSON (duplicate keys, NaN, deep nesting, NUL and lone surrogates are a 400 naming the
    # value, not a 500 from the database), and JSON only: the upload routes declare multipart
    # themselves, so the schema promises a form body only where one is read.
    "DEFAULT_PARSER_CLASSES": ["inboxerr.parsers.StorableJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "inboxerr.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inboxerr.exceptions.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "inboxerr.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Inboxerr API",
    "DESCRIPTION": "Bulk email and SMS back office: subscribers, imports, campaigns, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Self-hosted: the Swagger UI assets ship with the app instead of coming from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The enum names (drf-spectacular's own hook), the 429 of every throttled operation with its
    # Retry-After, then the Error component and on every operation the error codes it can answer.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "inboxerr.throttling.document_throttling",
        "inboxerr.openapi.add_error_responses",
    ],
    # Each status set gets a name of its own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "SubscriberStatusEnum": "subscribers.models.SubscriberStatus",
        "ImportStatusEnum": "imports.models.ImportStatus",
        "CampaignStatusEnum": "campaigns.models.CampaignStatus",
        "MessageStatusEnum": "campaigns.models.MessageStatus",
        "BatchStatusEnum": "campaigns.models.BatchStatus",
        "BatchItemStatusEnum": "campaigns.batches.ITEM_STATUSES",
        "OutboxStateEnum": "campaigns.batches.OUTBOX_STATES",
        "ChannelEnum": "subscribers.models.Channel",
    },
}

# --- Subscribers ---------------------------------------------------------------------------------

# Region used to read phone numbers written without a country code (ISO 3166 alpha-2).
PHONE_DEFAULT_REGION = env.str("PHONE_DEFAULT_REGION", default="US").upper()
# Lists above this many subscribers are only deleted with force=true.
LIST_DELETE_CONFIRM_THRESHOLD = _env_positive_int("LIST_DELETE_CONFIRM_THRESHOLD", 100_000)
# Searches count matches exactly up to this many, then report an estimate.
SEARCH_COUNT_CAP = _env_positive_int("SEARCH_COUNT_CAP", 10_000)

# --- Imports (the import issue builds on these) --------------------------------------------------

IMPORT_MAX_BYTES = _env_positive_int("IMPORT_MAX_BYTES", 1024**3)
IMPORT_RETENTION_HOURS = _env_positive_int("IMPORT_RETENTION_HOURS", 72)
IMPORT_DIR = Path(env.str("IMPORT_DIR", default=str(BASE_DIR / "var" / "imports")))
# Rows written per chunk: each chunk is one transaction with its counters and checkpoint.
IMPORT_CHUNK_ROWS = _env_positive_int("IMPORT_CHUNK_ROWS", 20_000)
# A processing job whose heartbeat is older than this is stuck: the sweeper hands it to another worker.
IMPORT_STUCK_AFTER_SECONDS = _env_positive_int("IMPORT_STUCK_AFTER_SECONDS", 300)
# How often a job whose run crashed (worker died, or the run raised) is resumed before it is failed.
IMPORT_MAX_AUTO_RETRIES = _env("IMPORT_MAX_AUTO_RETRIES", env.int, 3)
# Lines (errors and warnings) an import's report stores; the job's counts go on past it.
IMPORT_MAX_STORED_ERRORS = _env("IMPORT_MAX_STORED_ERRORS", env.int, 10_000)

# --- Dispatch ------------------------------------------------------------------------------------

# Seed 004's retry policy: attempts per message, exponential backoff with jitter from base to cap.
DISPATCH_MAX_ATTEMPTS = _env_positive_int("DISPATCH_MAX_ATTEMPTS", 3)
DISPATCH_BACKOFF_BASE_SECONDS = _env("DISPATCH_BACKOFF_BASE_SECONDS", env.float, 5.0)
DISPATCH_BACKOFF_MAX_SECONDS = _env("DISPATCH_BACKOFF_MAX_SECONDS", env.float, 60.0)
# The longest a provider's Retry-After may park a message.
DISPATCH_RETRY_AFTER_MAX_SECONDS = _env("DISPATCH_RETRY_AFTER_MAX_SECONDS", env.float, 3600.0)
# Messages a worker claims at once, and how long one dispatcher task runs before handing over.
DISPATCH_BATCH_SIZE = _env_positive_int("DISPATCH_BATCH_SIZE", 100)
DISPATCH_RUN_SECONDS = _env_positive_int("DISPATCH_RUN_SECONDS", 55)
# Dispatcher tasks queued when work arrives (one per worker process you want sending).
DISPATCH_WORKERS = _env_positive_int("DISPATCH_WORKERS", 2)
# One send may take this long; a message's lease is always longer (timeout + margin).
DISPATCH_SEND_TIMEOUT_SECONDS = _env_positive_int("DISPATCH_SEND_TIMEOUT_SECONDS", 15)
DISPATCH_LEASE_SECONDS = _env_positive_int("DISPATCH_LEASE_SECONDS", 120)
# Dispatcher commits without waiting for the WAL flush (see campaigns/dispatch.py _fast_commits).
DISPATCH_ASYNC_COMMIT = _env_bool("DISPATCH_ASYNC_COMMIT", True)
# A campaign pauses itself when more than this share of its last DISPATCH_PAUSE_WINDOW outcomes failed.
DISPATCH_PAUSE_FAILURE_RATE = _env("DISPATCH_PAUSE_FAILURE_RATE", env.float, 0.2)
DISPATCH_PAUSE_WINDOW = _env_positive_int("DISPATCH_PAUSE_WINDOW", 200)
if DISPATCH_LEASE_SECONDS <= DISPATCH_SEND_TIMEOUT_SECONDS + 5:
    raise ImproperlyConfigured("DISPATCH_LEASE_SECONDS must exceed DISPATCH_SEND_TIMEOUT_SECONDS by more than 5 seconds")
# Runs of a campaign's fan-out allowed to begin: one whose worker died is requeued by the minute
# tick until this many have begun, then the campaign is failed with the reason.
CAMPAIGN_MAX_FAN_OUT_ATTEMPTS = _env_positive_int("CAMPAIGN_MAX_FAN_OUT_ATTEMPTS", 3)

# --- Batch API and its ordered publisher (seed 003) ------------------------------------------

# Items one POST /api/v1/batch/process may carry, and the largest request body it accepts.
BATCH_MAX_ITEMS = _env_positive_int("BATCH_MAX_ITEMS", 100_000)
BATCH_MAX_BYTES = _env_positive_int("BATCH_MAX_BYTES", 64 * 1024 * 1024)
# The publisher's switch when nobody has used POST /api/v1/outbox/start|stop yet.
ENABLE_OUTBOX_PROCESSOR = _env_bool("ENABLE_OUTBOX_PROCESSOR", True)
# Items the publisher claims per step (all of one batch, in item order).
OUTBOX_BATCH_SIZE = _env_positive_int("OUTBOX_BATCH_SIZE", 100)
# How often a running publisher re-reads the switch and, while it waits for a retry, looks again.
OUTBOX_POLL_INTERVAL_SECONDS = _env("OUTBOX_POLL_INTERVAL_SECONDS", env.float, 1.0)
if OUTBOX_POLL_INTERVAL_SECONDS <= 0:
    raise ImproperlyConfigured("Invalid value for environment variable OUTBOX_POLL_INTERVAL_SECONDS: must be positive")

# --- Email and SMS -------------------------------------------------------------------------------

globals().update(_env("EMAIL_URL", env.email_url, "consolemail://"))
# The campaign email channel sends through Django's mail framework (EMAIL_URL above).
EMAIL_CHANNEL_BACKEND = env.str("EMAIL_CHANNEL_BACKEND", default="campaigns.channels.email.EmailBackend")
EMAIL_MESSAGE_ID_DOMAIN = env.str("EMAIL_MESSAGE_ID_DOMAIN", default="inboxerr.local")
# Dotted path of the SMS backend class.
SMS_BACKEND = env.str("SMS_BACKEND", default="campaigns.channels.sms.ConsoleBackend")
# campaigns.channels.sms.HttpGatewayBackend: a generic JSON gateway. POST SMS_GATEWAY_URL with
# {to, body, id}, `Authorization: Bearer SMS_GATEWAY_TOKEN` (omitted when empty), Idempotency-Key.
SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_TOKEN = env.str("SMS_GATEWAY_TOKEN", default="")
# campaigns.channels.sms.TwilioBackend: Twilio's Messages API, or a service that speaks it at
# TWILIO_API_BASE (tests point it at a loopback server). TWILIO_FROM_NUMBER is the sender (E.164).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="https://api.twilio.com").rstrip("/")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
_SMS_BACKEND_NEEDS = {
    "campaigns.channels.sms.HttpGatewayBackend": ("SMS_GATEWAY_URL",),
    "campaigns.channels.sms.TwilioBackend": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"),
}
for _name in _SMS_BACKEND_NEEDS.get(SMS_BACKEND, ()):
    if not globals()[_name]:
        raise ImproperlyConfigured(f"SMS_BACKEND={SMS_BACKEND} needs the environment variable {_name}")
for _name in ("SMS_GATEWAY_URL", "TWILIO_API_BASE"):
    if globals()[_name] and not globals()[_name].startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"Invalid value for environment variable {_name}: must be an http(s) URL")
# Shared secret of POST /api/v1/sms/inbound: the caller sends `X-Inboxerr-Timestamp: <unix seconds>`
# and `X-Inboxerr-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`. Unset: the
# route refuses every request.
SMS_INBOUND_SECRET = env.str("SMS_INBOUND_SECRET", default="")
# How far (seconds) an inbound SMS's timestamp may be from now, either way; each signature is accepted once.
SMS_INBOUND_TOLERANCE_SECONDS = _env_positive_int("SMS_INBOUND_TOLERANCE_SECONDS", 300)
EMAIL_TIMEOUT = DISPATCH_SEND_TIMEOUT_SECONDS
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="inboxerr@localhost")

# --- Metrics -------------------------------------------------------------------------------------

# Bearer token guarding /metrics. Unset: only callers from METRICS_ALLOWED_IPS may read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Behind a proxy every caller arrives from the proxy's address (often loopback), so trusting
# loopback would open /metrics to the world: with a proxy configured, only the token opens it.
_BEHIND_PROXY = SECURE_PROXY_SSL_HEADER is not None or NUM_PROXIES > 0
METRICS_ALLOWED_IPS = _env("METRICS_ALLOWED_IPS", env.list, [] if _BEHIND_PROXY else ["127.0.0.1", "::1"])
try:  # addresses or networks (10.0.0.0/8); a typo stops the start rather than locking Prometheus out
    [ipaddress.ip_network(item.strip(), strict=False) for item in METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"Invalid value for environment variable METRICS_ALLOWED_IPS: {exc}") from exc

# --- I18N, static --------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes writes four INFO lines per login; failed logins and lockouts are WARNINGs.
        "axes": {"level": "WARNING"},
    },
}

# --- Webhooks ------------------------------------------------------------------------------------

# Seconds to wait before each retry of a failed delivery; after the last one it is marked failed.
# The sweeper runs every minute, so delays under a minute are rounded up to its next run.
WEBHOOK_RETRY_SCHEDULE_SECONDS = [
    int(v) for v in _env("WEBHOOK_RETRY_SCHEDULE_SECONDS", env.list, ["5", "300", "1800", "7200", "18000", "36000", "36000"])
]
if not WEBHOOK_RETRY_SCHEDULE_SECONDS or min(WEBHOOK_RETRY_SCHEDULE_SECONDS) < 0:
    raise ImproperlyConfigured("Invalid value for environment variable WEBHOOK_RETRY_SCHEDULE_SECONDS")
WEBHOOK_TIMEOUT_SECONDS = _env_positive_int("WEBHOOK_TIMEOUT_SECONDS", 15)
WEBHOOK_DISABLE_AFTER_DAYS = _env_positive_int("WEBHOOK_DISABLE_AFTER_DAYS", 5)
WEBHOOK_SECRET_ROTATION_HOURS = _env_positive_int("WEBHOOK_SECRET_ROTATION_HOURS", 24)
# True lets webhooks reach loopback/private/link-local addresses (tests, trusted internal setups).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = _env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update({
    "WebhookEventEnum": "inboxerr.webhooks.events.WebhookEvent",
    "WebhookDeliveryStatusEnum": "inboxerr.webhooks.models.WebhookDelivery.Status",
})
