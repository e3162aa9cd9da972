"""Settings, read from the environment (12-factor); every limit and switch is an environment variable."""
import secrets
import socket
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.log import DEFAULT_LOGGING

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("ENGINE_ROOM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

ENGINE_ROOM_ENV = env.str("ENGINE_ROOM_ENV", default="development")
PRODUCTION = ENGINE_ROOM_ENV == "production"
TESTING = env.bool("ENGINE_ROOM_TESTING", default=False)


def _generated(name: str, make) -> str:
    """A value kept under var/ for local runs, made once; production must set it explicitly."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")
    ENGINE_ROOM_SECRETS_KEY = env.list("ENGINE_ROOM_SECRETS_KEY")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _generated("secret_key", lambda: secrets.token_urlsafe(50))
    ENGINE_ROOM_SECRETS_KEY = env.list("ENGINE_ROOM_SECRETS_KEY", default=[]) or [
        _generated("secrets_key", _new_fernet_key)
    ]

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "datastore",
    "logs",
    "workflows",
    "scheduler",
    "api_endpoints",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "logs.context_processors.wu_budget",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and beat processes read while one of them writes; IMMEDIATE
    # transactions take the write lock up front instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "application_name", env.str("ENGINE_ROOM_DB_APPLICATION_NAME", default="engine_room")
    )
    # Server-side binding lets psycopg prepare a statement after a connection's second use: PostgreSQL then
    # skips parsing and planning the claim, the commit and every ORM query that repeats (bench O22).
    # Turn it off behind a transaction-mode PgBouncer older than 1.21 (docs/scaling.md).
    if env.bool("ENGINE_ROOM_DB_PREPARED", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis, broker, cache -------------------------------------------------------------------
def _answers(url: str) -> bool:
    """Whether a Redis server accepts a TCP connection at url (checked once, at start)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.3):
            return True
    except OSError:
        return False


REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_AVAILABLE = env.bool("ENGINE_ROOM_REDIS", default=None)
if REDIS_AVAILABLE is None:
    REDIS_AVAILABLE = _answers(REDIS_URL)

_local_broker = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or (REDIS_URL if REDIS_AVAILABLE else "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed"):
        (_local_broker / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_local_broker / "in"),
        "data_folder_out": str(_local_broker / "in"),
        "processed_folder": str(_local_broker / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # One redis-py client per channel instead of one per publish and per ack (config/broker.py).
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        CELERY_BROKER_TRANSPORT = "config.broker:Transport"

if REDIS_AVAILABLE:
    CACHES = {
        "default": {
            # Django's backend with one redis-py client per pool instead of one per call (config/cache.py).
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("ENGINE_ROOM_CACHE_PREFIX", default="er"),
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery ---------------------------------------------------------------------------------
QUEUE_PREFIX = env.str("ENGINE_ROOM_QUEUE_PREFIX", default="")
QUEUE_INTERACTIVE = f"{QUEUE_PREFIX}interactive"
QUEUE_DEFAULT = f"{QUEUE_PREFIX}default"
QUEUE_BULK = f"{QUEUE_PREFIX}bulk"
CELERY_TASK_DEFAULT_QUEUE = QUEUE_DEFAULT
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes every database connection before and after each task unless this is
# set: a new PostgreSQL connection per run. config/celery.py applies CONN_MAX_AGE instead.
CELERY_DB_REUSE_MAX = 2**31

# --- Engine limits (all overridable per process, so drills can set them for real workers) ----
ENGINE_ROOM_LEASE_SECONDS = env.int("ENGINE_ROOM_LEASE_SECONDS", default=30)
ENGINE_ROOM_SWEEP_SECONDS = env.float("ENGINE_ROOM_SWEEP_SECONDS", default=10.0)
# A queued run is only re-enqueued once it has waited this long past its not_before: a normal
# enqueue is picked up within milliseconds, so this catches lost broker messages only.
ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS = env.int("ENGINE_ROOM_SWEEP_QUEUED_AFTER_SECONDS", default=60)
ENGINE_ROOM_MAX_CALL_DEPTH = env.int("ENGINE_ROOM_MAX_CALL_DEPTH", default=20)
ENGINE_ROOM_MAX_CHAIN_LENGTH = env.int("ENGINE_ROOM_MAX_CHAIN_LENGTH", default=100_000)
ENGINE_ROOM_MAX_STEPS = env.int("ENGINE_ROOM_MAX_STEPS", default=200)
# Steps that only read are committed with the next write; a run of them still shows its progress at
# least this often (docs/engine.md, "Commits").
ENGINE_ROOM_PROGRESS_SECONDS = env.float("ENGINE_ROOM_PROGRESS_SECONDS", default=1.0)
# The dispatcher sends runs that start together several to a message (up to this many), since a
# message cost the worker about as much as a short run; the runs a message carries start within
# ENGINE_ROOM_MESSAGE_SECONDS of its first, the rest go back to the queue (docs/engine.md, "Messages").
ENGINE_ROOM_RUNS_PER_MESSAGE = env.int("ENGINE_ROOM_RUNS_PER_MESSAGE", default=10)
ENGINE_ROOM_MESSAGE_SECONDS = env.float("ENGINE_ROOM_MESSAGE_SECONDS", default=1.0)
# Runs started alone (a webhook's, a manual one) wait on a Redis list per queue and timeout, taken one at a
# time by drainer tasks, a message per drainer rather than per run (docs/engine.md, "Run lists"). At most
# ENGINE_ROOM_DRAINERS drain one list at once across all machines: the children consuming `interactive`.
ENGINE_ROOM_RUN_LISTS = env.bool("ENGINE_ROOM_RUN_LISTS", default=True)
ENGINE_ROOM_DRAINERS = env.int("ENGINE_ROOM_DRAINERS", default=3)
if ENGINE_ROOM_DRAINERS < 1:
    raise ImproperlyConfigured("ENGINE_ROOM_DRAINERS must be 1 or more: with none, listed runs would wait for the sweeper.")
# How long an idle drainer waits for the next run before it leaves (meanwhile its child takes no other message).
ENGINE_ROOM_DRAINER_LINGER_SECONDS = env.float("ENGINE_ROOM_DRAINER_LINGER_SECONDS", default=0.1)
# A drainer's place not renewed for this long no longer counts (its drainer died, or sits on one long run).
ENGINE_ROOM_DRAINER_STALE_SECONDS = env.int("ENGINE_ROOM_DRAINER_STALE_SECONDS", default=30)
ENGINE_ROOM_STEP_OUTPUT_LIMIT = env.int("ENGINE_ROOM_STEP_OUTPUT_LIMIT", default=64 * 1024)
ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT = env.int("ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT", default=1024 * 1024)
ENGINE_ROOM_EXPRESSION_TIME_LIMIT = env.float("ENGINE_ROOM_EXPRESSION_TIME_LIMIT", default=2.0)
ENGINE_ROOM_HTTP_ALLOW = env.list("ENGINE_ROOM_HTTP_ALLOW", default=[])
ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES = env.int("ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES", default=5 * 1024 * 1024)
ENGINE_ROOM_HTTP_DEFAULT_TIMEOUT = env.float("ENGINE_ROOM_HTTP_DEFAULT_TIMEOUT", default=30.0)
ENGINE_ROOM_DEFINITION_CACHE_SECONDS = env.int("ENGINE_ROOM_DEFINITION_CACHE_SECONDS", default=300)

# Workload units: what each part of a run costs (docs/workload-units.md).
ENGINE_ROOM_WU_COSTS = {
    "run": 0.2,
    "step": 0.05,
    "record_written": 0.1,
    "record_read": 0.01,
    "http_request": 0.5,
    "email": 0.5,
    "schedule": 0.1,
}

# The action catalogue: an explicit list, loaded once into a dict by type.
ENGINE_ROOM_ACTIONS = [
    "workflows.actions.create_record.CreateRecord",
    "workflows.actions.update_record.UpdateRecord",
    "workflows.actions.delete_record.DeleteRecord",
    "workflows.actions.update_records.UpdateRecords",
    "workflows.actions.delete_records.DeleteRecords",
    "workflows.actions.find_records.FindRecords",
    "workflows.actions.http_request.HttpRequest",
    "workflows.actions.send_email.SendEmail",
    "workflows.actions.set_values.SetValues",
    "workflows.actions.return_response.ReturnResponse",
    "workflows.actions.terminate.Terminate",
    "workflows.actions.run_workflow.RunWorkflow",
    "scheduler.actions.schedule_workflow.ScheduleWorkflow",
    "scheduler.actions.schedule_workflow_on_list.ScheduleWorkflowOnList",
    "scheduler.actions.cancel_scheduled.CancelScheduled",
    "scheduler.actions.schedule_recurring.ScheduleRecurring",
    "scheduler.actions.cancel_recurring.CancelRecurring",
]

CELERY_BEAT_SCHEDULE = {
    "engine-room-sweep-runs": {
        "task": "scheduler.tasks.runs_sweep",
        "schedule": ENGINE_ROOM_SWEEP_SECONDS,
        "options": {"queue": QUEUE_DEFAULT, "expires": ENGINE_ROOM_SWEEP_SECONDS},
    },
}

# --- Email ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Engine Room <noreply@engine-room.local>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# The editor posts a workflow as one form: a field per setting of every step (Django's default, 1000, is ~40 steps).
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=20_000)

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API tokens first: its WWW-Authenticate header makes an unauthenticated call a 401, not a 403.
        "api_endpoints.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exception_handler.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Engine Room API",
    "DESCRIPTION": "Backend workflows as HTTP endpoints, plus the management API.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# runserver's request lines (`django.server`) carry the query string, so `?api_token=` values are masked
# there as in gunicorn's access log (config/gunicorn_logging.py); the rest is Django's own configuration.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_api_token": {"()": "config.log_masking.ApiTokenFilter"}},
    "formatters": {"django.server": DEFAULT_LOGGING["formatters"]["django.server"]},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": DEFAULT_LOGGING["handlers"]["django.server"],
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {**DEFAULT_LOGGING["loggers"]["django.server"], "filters": ["mask_api_token"]},
    },
}

# --- Production -----------------------------------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Scheduler (issue 4) --------------------------------------------------------------------
# The dispatcher's tick: due scheduled runs start within about this long after their time.
ENGINE_ROOM_DISPATCH_SECONDS = env.float("ENGINE_ROOM_DISPATCH_SECONDS", default=1.0)
ENGINE_ROOM_DISPATCH_BATCH_SIZE = env.int("ENGINE_ROOM_DISPATCH_BATCH_SIZE", default=500)
# The dispatcher also sends runs due before its next tick, held by Celery until their due time.
ENGINE_ROOM_DISPATCH_AHEAD_SECONDS = env.float("ENGINE_ROOM_DISPATCH_AHEAD_SECONDS",
                                               default=max(1.0, ENGINE_ROOM_DISPATCH_SECONDS))
# One tick stops claiming new batches after this long; the next tick goes on.
ENGINE_ROOM_DISPATCH_BUDGET_SECONDS = env.float("ENGINE_ROOM_DISPATCH_BUDGET_SECONDS", default=20.0)
ENGINE_ROOM_LIST_MAX_ITEMS = env.int("ENGINE_ROOM_LIST_MAX_ITEMS", default=100_000)
ENGINE_ROOM_BATCH_RECOUNT_SECONDS = env.float("ENGINE_ROOM_BATCH_RECOUNT_SECONDS", default=5.0)
# A recurring slot fired later than this counts as missed (the missed-run policy decides).
ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS = env.float("ENGINE_ROOM_RECURRING_MISSED_AFTER_SECONDS", default=120.0)
# The dispatcher fires a recurring slot itself once beat is this late with it.
ENGINE_ROOM_RECURRING_FALLBACK_SECONDS = env.float("ENGINE_ROOM_RECURRING_FALLBACK_SECONDS", default=5.0)
ENGINE_ROOM_RECURRING_FIRE_EXPIRES_SECONDS = env.int("ENGINE_ROOM_RECURRING_FIRE_EXPIRES_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["engine-room-dispatch"] = {
    "task": "scheduler.tasks.scheduler_dispatch",
    # Beat's database scheduler stores intervals in whole seconds.
    "schedule": max(1.0, ENGINE_ROOM_DISPATCH_SECONDS),
    "options": {"queue": QUEUE_DEFAULT, "expires": max(ENGINE_ROOM_DISPATCH_SECONDS, 5.0)},
}
CELERY_BEAT_SCHEDULE["engine-room-recount-batches"] = {
    "task": "scheduler.tasks.batches_recount",
    "schedule": max(1.0, ENGINE_ROOM_BATCH_RECOUNT_SECONDS),
    "options": {"queue": QUEUE_DEFAULT, "expires": max(ENGINE_ROOM_BATCH_RECOUNT_SECONDS, 5.0)},
}

# --- API endpoints (issue 3) ---------------------------------------------------------------
# Bodies above this get a 413 before anything else is read (uploads included).
ENGINE_ROOM_MAX_BODY_BYTES = env.int("ENGINE_ROOM_MAX_BODY_BYTES", default=1024 * 1024)
# Django's own limit must stay above ours, so that the caller sees our 413 and not Django's 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, ENGINE_ROOM_MAX_BODY_BYTES + 1)
# Per API token (or signed-in person), and per IP for callers without a valid token: "<n>/<s|min|hour|day>".
ENGINE_ROOM_RATE_LIMITS = {
    "token": env.str("ENGINE_ROOM_RATE_PER_TOKEN", default="1200/min"),
    "ip": env.str("ENGINE_ROOM_RATE_PER_IP", default="600/min"),
}
# A repeated idempotency key within this window answers with the first run (Stripe retries for 3 days).
ENGINE_ROOM_IDEMPOTENCY_HOURS = env.int("ENGINE_ROOM_IDEMPOTENCY_HOURS", default=72)
ENGINE_ROOM_STRIPE_TOLERANCE_SECONDS = env.int("ENGINE_ROOM_STRIPE_TOLERANCE_SECONDS", default=300)
SPECTACULAR_SETTINGS.update({
    "DEFAULT_GENERATOR_CLASS": "api_endpoints.openapi.SchemaGenerator",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api_endpoints.openapi.add_workflow_operations",
    ],
})
CELERY_BEAT_SCHEDULE["engine-room-prune-idempotency-keys"] = {
    "task": "api_endpoints.tasks.idempotency_keys_prune",
    "schedule": 3600.0,
    "options": {"queue": QUEUE_DEFAULT, "expires": 3600},
}

# --- Logs (issue 6) -------------------------------------------------------------------------
# Retention: finished runs older than this many days, or beyond the newest LOG_RETENTION_MAX_RUNS
# (0: no count limit), are rolled into daily aggregates and deleted, in batches (docs/logs.md).
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=14)
LOG_RETENTION_MAX_RUNS = env.int("LOG_RETENTION_MAX_RUNS", default=1_000_000)
LOG_RETENTION_BATCH_SIZE = env.int("LOG_RETENTION_BATCH_SIZE", default=1000)
LOG_RETENTION_PRUNE_SECONDS = env.float("LOG_RETENTION_PRUNE_SECONDS", default=3600.0)
# One prune pass stops after this long and sends itself again, so a backlog never holds a worker.
LOG_RETENTION_PASS_SECONDS = env.float("LOG_RETENTION_PASS_SECONDS", default=60.0)
# Workload units: an optional monthly budget (UTC calendar month); None means no budget. At
# ENGINE_ROOM_WU_BUDGET_WARN_RATIO of it every page shows a banner; with ..._ENFORCE new runs are refused.
ENGINE_ROOM_WU_MONTHLY_BUDGET = env.float("ENGINE_ROOM_WU_MONTHLY_BUDGET", default=None)
ENGINE_ROOM_WU_BUDGET_ENFORCE = env.bool("ENGINE_ROOM_WU_BUDGET_ENFORCE", default=False)
ENGINE_ROOM_WU_BUDGET_WARN_RATIO = env.float("ENGINE_ROOM_WU_BUDGET_WARN_RATIO", default=0.8)
# Each process recounts the month's WU at most this often (the budget check sits on the hot path).
ENGINE_ROOM_WU_BUDGET_RECOUNT_SECONDS = env.float("ENGINE_ROOM_WU_BUDGET_RECOUNT_SECONDS", default=30.0)
# Failure alerts: an email when a live run fails, at most once per workflow per period; to
# LOG_ALERT_EMAILS, or else to every active superuser with an email address.
LOG_FAILURE_ALERTS = env.bool("LOG_FAILURE_ALERTS", default=False)
LOG_ALERT_EMAILS = env.list("LOG_ALERT_EMAILS", default=[])
LOG_ALERT_PERIOD_SECONDS = env.int("LOG_ALERT_PERIOD_SECONDS", default=3600)
# Where people reach this deployment, for links in emails.
ENGINE_ROOM_BASE_URL = env.str("ENGINE_ROOM_BASE_URL", default="http://127.0.0.1:8000")
CELERY_BEAT_SCHEDULE["engine-room-prune-logs"] = {
    "task": "logs.tasks.runs_prune",
    "schedule": LOG_RETENTION_PRUNE_SECONDS,
    "options": {"queue": QUEUE_DEFAULT, "expires": LOG_RETENTION_PRUNE_SECONDS},
}
# The dashboard's figures are computed once for every viewer within this many seconds (0: always).
LOG_DASHBOARD_CACHE_SECONDS = env.int("LOG_DASHBOARD_CACHE_SECONDS", default=30)

# --- Templates and files (issue 9) ----------------------------------------------------------
ENGINE_ROOM_ACTIONS += [
    "workflows.actions.aggregate.Aggregate",
    "workflows.actions.create_file.CreateFile",
]
ENGINE_ROOM_WU_COSTS.update({"aggregate": 0.1, "file_created": 0.2})
# Where created files (and uploads) are kept by the default FileSystemStorage; tests point their
# worker processes at a temporary directory.
MEDIA_ROOT = Path(env.str("ENGINE_ROOM_MEDIA_ROOT", default=str(MEDIA_ROOT)))
# create_file refuses content larger than this (bytes), before anything is stored.
ENGINE_ROOM_FILE_MAX_BYTES = env.int("ENGINE_ROOM_FILE_MAX_BYTES", default=10 * 1024 * 1024)
# How long a created file's download link works (a step may ask for another duration); the file
# is pruned once its link has expired.
ENGINE_ROOM_FILE_URL_EXPIRY_SECONDS = env.int("ENGINE_ROOM_FILE_URL_EXPIRY_SECONDS", default=7 * 86400)
ENGINE_ROOM_FILE_PRUNE_SECONDS = env.float("ENGINE_ROOM_FILE_PRUNE_SECONDS", default=3600.0)
# A TrueType font for PDFs (any script): a path, "auto" (DejaVu Sans where the system has it, as
# Debian's fonts-dejavu-core installs it) or "none" (Helvetica: Latin-1 text only, the rest replaced).
ENGINE_ROOM_PDF_FONT = env.str("ENGINE_ROOM_PDF_FONT", default="auto")
if ENGINE_ROOM_PDF_FONT == "auto":
    ENGINE_ROOM_PDF_FONT = next(
        (
            path
            for path in (
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
            )
            if Path(path).is_file()
        ),
        "",
    )
elif ENGINE_ROOM_PDF_FONT == "none":
    ENGINE_ROOM_PDF_FONT = ""
# aggregate with group_by fails rather than return more groups than this.
ENGINE_ROOM_AGGREGATE_MAX_GROUPS = env.int("ENGINE_ROOM_AGGREGATE_MAX_GROUPS", default=1000)
CELERY_BEAT_SCHEDULE["engine-room-prune-files"] = {
    "task": "workflows.tasks.files_prune",
    "schedule": ENGINE_ROOM_FILE_PRUNE_SECONDS,
    "options": {"queue": QUEUE_DEFAULT, "expires": ENGINE_ROOM_FILE_PRUNE_SECONDS},
}
# fontTools (under fpdf2) logs every PDF's font subsetting at INFO; only its warnings are news.
LOGGING["loggers"]["fontTools"] = {"level": "WARNING"}

# --- Reliability and security (issue 7) -----------------------------------------------------
# docs/security.md and docs/reliability.md say what each of these protects and which test proves it.
from django.utils.csp import CSP  # noqa: E402  (settings are read top to bottom; this block is appended)

INSTALLED_APPS += ["audit"]
# The CSP header on every response; the audit middleware lets model signals name who acted.
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "config.csp.ContentSecurityPolicyMiddleware")
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "audit.context.AuditContextMiddleware")
TEMPLATES[0]["OPTIONS"]["context_processors"].append("django.template.context_processors.csp")
# Workflow calls come from machines: no session, CSRF cookie, message, login page, audited change or
# static file applies to them, so config/wsgi.py serves them through MIDDLEWARE without these (a
# middleware added to MIDDLEWARE later applies to them too, unless it is named here).
BROWSER_ONLY_MIDDLEWARE = {
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
}
WEBHOOK_MIDDLEWARE = [name for name in MIDDLEWARE if name not in BROWSER_ONLY_MIDDLEWARE]

# Sign-in throttling (config/login.py): failures per username and IP, and per IP, within the lockout period.
AUTHENTICATION_BACKENDS = ["config.login.ThrottledModelBackend"]
ENGINE_ROOM_LOGIN_MAX_FAILURES = env.int("ENGINE_ROOM_LOGIN_MAX_FAILURES", default=5)
ENGINE_ROOM_LOGIN_MAX_FAILURES_PER_IP = env.int("ENGINE_ROOM_LOGIN_MAX_FAILURES_PER_IP", default=50)
ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS = env.int("ENGINE_ROOM_LOGIN_LOCKOUT_SECONDS", default=900)

# The audit log (audit/): kept this long, pruned daily.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
CELERY_BEAT_SCHEDULE["engine-room-prune-audit"] = {
    "task": "audit.tasks.audit_prune",
    "schedule": 24 * 3600.0,
    "options": {"queue": QUEUE_DEFAULT, "expires": 3600},
}

# Heartbeats for /healthz and /metrics (config/heartbeat.py): beat sends a heartbeat task to each
# queue; a heartbeat older than ..._STALE_SECONDS marks its worker (or beat) as down.
CELERY_IMPORTS = ["config.heartbeat"]
ENGINE_ROOM_HEARTBEAT_SECONDS = env.float("ENGINE_ROOM_HEARTBEAT_SECONDS", default=10.0)
ENGINE_ROOM_HEARTBEAT_STALE_SECONDS = env.float("ENGINE_ROOM_HEARTBEAT_STALE_SECONDS", default=60.0)
for _kind, _queue in (("interactive", QUEUE_INTERACTIVE), ("default", QUEUE_DEFAULT), ("bulk", QUEUE_BULK)):
    CELERY_BEAT_SCHEDULE[f"engine-room-heartbeat-{_kind}"] = {
        "task": "config.heartbeat.worker_heartbeat",
        "schedule": max(1.0, ENGINE_ROOM_HEARTBEAT_SECONDS),
        "args": (_kind,),
        # A heartbeat that waited in a backlog is dropped: its staleness is the news.
        "options": {"queue": _queue, "expires": max(1.0, ENGINE_ROOM_HEARTBEAT_SECONDS)},
    }

# /metrics (config/metrics.py): scraped with this bearer token (or an admin API token).
ENGINE_ROOM_METRICS_TOKEN = env.str("ENGINE_ROOM_METRICS_TOKEN", default="")
ENGINE_ROOM_METRICS_WINDOW_SECONDS = env.int("ENGINE_ROOM_METRICS_WINDOW_SECONDS", default=300)
ENGINE_ROOM_METRICS_CACHE_SECONDS = env.int("ENGINE_ROOM_METRICS_CACHE_SECONDS", default=5)

# Security headers. Django's defaults already send nosniff, Referrer-Policy same-origin,
# Cross-Origin-Opener-Policy same-origin and X-Frame-Options DENY; they are spelled out so that a
# test pins them and nobody loosens one by accident.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"


def _handler_hashes(*sources: str) -> list[str]:
    """CSP hashes of inline event handlers ('unsafe-hashes' allows exactly these, nothing else inline)."""
    import base64
    import hashlib

    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in sources]


# Inline event handlers still in templates (templates/scheduler/): allowed by hash until they move
# into static JS; tests/security/test_headers.py fails on any handler not listed here.
ENGINE_ROOM_CSP_INLINE_HANDLERS = (
    "return confirm('Delete this recurring event?')",
    "document.querySelectorAll('input[name=ids]').forEach(box => box.checked = this.checked)",
)
# Content-Security-Policy: scripts and styles from this origin only (static/vendor holds htmx,
# Chart.js, Sortable), a per-response nonce for the few inline blocks (Swagger UI), no framing,
# forms post only here. Style attributes stay allowed (progress bars set widths inline).
_CSP_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE, CSP.UNSAFE_HASHES, *_handler_hashes(*ENGINE_ROOM_CSP_INLINE_HANDLERS)],
    # The hash is htmx's own indicator stylesheet, which htmx.min.js (2.x) injects on every page;
    # tests/security/test_csp_browser.py fails when an htmx upgrade changes it.
    "style-src": [CSP.SELF, CSP.NONCE, "'sha256-faU7yAF8NxuMTNEwVmBz+VcYeIoBQ2EMHW3WaVxCvnk='"],
    "style-src-attr": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
# ENGINE_ROOM_CSP_REPORT_ONLY=1 sends the policy as Content-Security-Policy-Report-Only instead,
# for trying a change of it on a live deployment without breaking pages.
if env.bool("ENGINE_ROOM_CSP_REPORT_ONLY", default=False):
    SECURE_CSP, SECURE_CSP_REPORT_ONLY = {}, _CSP_POLICY
else:
    SECURE_CSP, SECURE_CSP_REPORT_ONLY = _CSP_POLICY, {}
# drf-spectacular names enums after their field: three different "status" choice sets (runs, scheduled
# runs, and the scheduled-run filter with "all") need names of their own, or `check --deploy` warns
# (drf_spectacular.W001).
SPECTACULAR_SETTINGS.setdefault("ENUM_NAME_OVERRIDES", {}).update({
    "RunStatusEnum": "logs.models.RunStatus",
    "ScheduledRunStatusEnum": "scheduler.models.ScheduledRunStatus",
    "ScheduledRunStatusFilterEnum": ["pending", "paused", "dispatched", "cancelled", "all"],
})
# urllib3 logs each request line at DEBUG, query string included — where a workflow may have put a
# secret (`?key={{ secrets.X }}`). Kept at WARNING whatever LOG_LEVEL says (docs/security.md); its
# warnings name URLs too ("Failed to parse headers (url=…)"), so they and requests' records pass a
# handler that masks the running workflow's secrets before any other handler sees them.
LOGGING["handlers"]["run_secrets"] = {"class": "workflows.log_masking.SecretMaskingHandler"}
LOGGING["loggers"]["urllib3"] = {"level": "WARNING", "handlers": ["run_secrets"]}
LOGGING["loggers"]["requests"] = {"handlers": ["run_secrets"]}
