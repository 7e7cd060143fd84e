"""Settings, all from the environment (12-factor).

Two modes:
- production-like: DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) are set, SECRET_KEY is required.
- embedded default (neither set): SQLite and Celery's filesystem broker under MAMMO_VAR_DIR, a random secret key
  generated once and kept in that folder. Uploads are still processed asynchronously by a real Celery worker.
"""

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env("MAMMO_VAR_DIR", default=str(BASE_DIR / "var")))
EMBEDDED = not env("DATABASE_URL", default="")
DEBUG = env.bool("DEBUG", default=False)


def _embedded_secret_key() -> str:
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if EMBEDDED or DEBUG:
        SECRET_KEY = _embedded_secret_key()
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DATABASE_URL is set.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/docs/ (mammo_platform/api_docs.py)
    # Before accounts: accounts.admin replaces knox's admin, and needs it registered first.
    "knox",
    "axes",
    "csp",
    "core",
    "accounts",
    "audit",
    "inference",
    "cases",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.request_limits.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginRequiredExceptApiMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mammo_platform.urls"
WSGI_APPLICATION = "mammo_platform.wsgi.application"

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
                "accounts.context_processors.capabilities",
            ],
        },
    },
]

if EMBEDDED:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # The web process and the worker write concurrently: wait for locks instead of failing, and take the
            # write lock at BEGIN so two writers never deadlock on a lock upgrade.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Failed sign-in lockout (django-axes, accounts.lockout): LOGIN_FAILURE_LIMIT failures of one user name from one
# client address lock that name at that address (never the name everywhere: nobody can lock a colleague out by
# typing their name); LOGIN_FAILURE_LIMIT_PER_ADDRESS failures from one address over all names lock the address
# (0: no such ceiling). A lock ends LOGIN_LOCKOUT_SECONDS after the last failure, or when an administrator lifts it.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=50)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked name and address before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "accounts.lockout.PairAndAddressHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "accounts.addresses.client_address"  # the audit trail's address, behind the proxy too
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit trail
AXES_ENABLE_ADMIN = False  # accounts.admin shows failures to administrators (by role) and lifts lockouts
# The login form and the token endpoint answer a lockout themselves (accounts.lockout), so axes' middleware, which
# would replace their answer with its own, is left out.
SILENCED_SYSTEM_CHECKS = ["axes.W002"]

# API tokens (django-rest-knox, accounts.tokens): a new token at each sign-in through the API, stored hashed,
# expiring API_TOKEN_LIFETIME_SECONDS after it was issued; revoked by its owner or an administrator, and all of a
# user's tokens when their password changes.
API_TOKEN_LIFETIME_SECONDS = env.int("API_TOKEN_LIFETIME_SECONDS", default=8 * 60 * 60)
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=API_TOKEN_LIFETIME_SECONDS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# Sessions and cookies. Secure cookies default on behind the TLS proxy and outside the embedded default (which
# runs over plain HTTP on localhost).
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=BEHIND_TLS_PROXY or (not EMBEDDED and not DEBUG))
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
# Sessions are read from the cache (Redis; the embedded default's file cache) and written to both the cache and the
# database: every signed-in request reads its session, and a PostgreSQL round trip for it was a large share of a
# page's time under load (docs/performance-figures.md, "Load (50 vs 10 clients)"). The database copy keeps people
# signed in when the cache is emptied or restarted. Ending a session is unchanged: signing out deletes both copies,
# and a password change ends every session through the auth hash that each request checks against the user row.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind the TLS proxy the deployment is HTTPS-only by default: http:// is redirected (except the health check,
# which container probes send as plain HTTP inside the network), and HSTS tells browsers never to try plain HTTP
# again (one year; includeSubDomains only when every host under the domain speaks HTTPS, so it is opt-in).
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]  # container health checks speak plain HTTP inside the network
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 60 * 60)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)

# Content-Security-Policy on every response (django-csp): scripts, styles and everything else from this site only;
# no inline scripts or style attributes, no plugins, no framing, forms post only here. Images and workers may also
# be data:/blob: URLs (canvas-rendered images in the viewer).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Error pages with the site's layout; JSON instead on API paths (core.error_pages).
CSRF_FAILURE_VIEW = "core.error_pages.csrf_failure"

CACHES = {
    "default": {
        **env.cache(
            "CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}" if EMBEDDED else "redis://127.0.0.1:6379/1"
        ),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default=""),
    }
}

LANGUAGE_CODE = "en-gb"
# Every time a person reads is in this zone, on a 24-hour clock (mammo_platform/formats; the footer names the zone).
TIME_ZONE = env("TIME_ZONE", default="UTC")
FORMAT_MODULE_PATH = ["mammo_platform.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "mammo_platform" / "static"]
# The media store (core.storage): uploaded originals, their derivatives, heatmaps and DICOM results. Never
# served from a public URL: only through views that check the user's right to see the study (cases.studies.files).
# MEDIA_STORAGE chooses it: "local" (the default) keeps the files under MEDIA_ROOT on this host; "s3" keeps them in
# an S3-compatible object store that every host reaches (mammo_platform/settings_storage.py), and MEDIA_ROOT then
# holds only incoming/, where this host receives uploads before they are stored.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
from mammo_platform.settings_storage import media_storage  # noqa: E402

MEDIA_STORAGE, _media_store = media_storage(env, media_root=MEDIA_ROOT)
STORAGES = {
    "default": _media_store,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads. Files larger than the in-memory limit are streamed to a temporary file by Django.
MAMMO_MAX_FILE_BYTES = env.int("MAMMO_MAX_FILE_BYTES", default=200 * 1024 * 1024)
MAMMO_MAX_PIXELS = env.int("MAMMO_MAX_PIXELS", default=60_000_000)
MAMMO_MAX_FILES_PER_UPLOAD = env.int("MAMMO_MAX_FILES_PER_UPLOAD", default=50)
# A whole request (all its files): refused from its Content-Length before the body is read; the TLS proxy
# (docker/README.md) is given the same limit, gunicorn bounds the headers (mammo_platform/gunicorn_conf.py).
MAMMO_MAX_REQUEST_BYTES = env.int("MAMMO_MAX_REQUEST_BYTES", default=512 * 1024 * 1024)
# Decodes running at once in one process (web worker or DICOM listener): bounds its memory under many uploads.
MAMMO_DECODE_CONCURRENCY = env.int("MAMMO_DECODE_CONCURRENCY", default=1)
DATA_UPLOAD_MAX_NUMBER_FILES = MAMMO_MAX_FILES_PER_UPLOAD
# Uploads are streamed to the store's incoming folder while hashed, never held in memory (cases.studies.uploads).
FILE_UPLOAD_HANDLERS = ["cases.studies.uploads.HashingUploadHandler"]
PREVIEW_MAX_SIDE = env.int("PREVIEW_MAX_SIDE", default=1024)

# Opening a study's images is audited once per person, study and session within this window (not per image file).
AUDIT_ACCESS_WINDOW_SECONDS = env.int("AUDIT_ACCESS_WINDOW_SECONDS", default=30 * 60)

# Whether readers see the AI result while reading (the reading page shows or hides it; recorded on each read).
READERS_SEE_AI = env.bool("READERS_SEE_AI", default=True)
# How the AI is revealed in a read given with it (READERS_SEE_AI): "on_request" (off when the read opens, one switch
# shows it on every view: the reader looks first, so the AI does not anchor the read), "open" (on when the read
# opens), "after_first_impression" (hidden until the reader has recorded a first impression per breast). Each read
# records the mode it was given in (Read.ai_reveal).
AI_REVEAL = env("AI_REVEAL", default="on_request")
if AI_REVEAL not in ("on_request", "open", "after_first_impression"):
    raise ImproperlyConfigured(f"AI_REVEAL must be on_request, open or after_first_impression, not {AI_REVEAL!r}")
# Which double reads go to arbitration by a lead (cases.reading.services.arbitration_needed): "discordant" (the two
# readers' recall decisions differ for a breast), "every_recall" (also any recall), "every_non_normal" (also any
# BI-RADS other than 1, or any technical recall).
ARBITRATION_POLICY = env("ARBITRATION_POLICY", default="discordant")
if ARBITRATION_POLICY not in ("discordant", "every_recall", "every_non_normal"):
    raise ImproperlyConfigured(
        f"ARBITRATION_POLICY must be discordant, every_recall or every_non_normal, not {ARBITRATION_POLICY!r}"
    )

# The screening service that writes the women's result letters (cases/letters): its name, postal address (lines
# separated by "|") and telephone number, printed on every letter. The wording of each letter is the site's own,
# edited on /letters/templates/ by a lead radiologist.
SCREENING_SERVICE_NAME = env("SCREENING_SERVICE_NAME", default="Breast Screening Service")
SCREENING_SERVICE_ADDRESS = env("SCREENING_SERVICE_ADDRESS", default="")
SCREENING_SERVICE_PHONE = env("SCREENING_SERVICE_PHONE", default="")

# The reading viewer's drawing: "auto" (WebGL on a real GPU, Cornerstone's CPU path on a software rasteriser, where
# it is faster), or "cpu" / "gpu" to force one.
VIEWER_RENDERING = env("VIEWER_RENDERING", default="auto")

# Models: registered model files are copied here (content-addressed); the shipped default lives in default_model/.
MODEL_DIR = Path(env("MODEL_DIR", default=str(VAR_DIR / "models")))
MAMMO_DATA_DIR = env("MAMMO_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data"))
DEFAULT_MODEL_DIR = BASE_DIR / "default_model"
# Importing a model (inference.imports): the largest file accepted (a page upload is also bounded by
# MAMMO_MAX_FILE_BYTES), the largest a zipped SavedModel may unpack to, the slowest a model may be on the conformance
# check (median milliseconds per image on this machine), and how long the whole check may take (it runs in a child
# process; under gunicorn's timeout, as the import page waits for it).
MODEL_IMPORT_MAX_BYTES = env.int("MODEL_IMPORT_MAX_BYTES", default=200 * 1024 * 1024)
MODEL_IMPORT_MAX_UNPACKED_BYTES = env.int("MODEL_IMPORT_MAX_UNPACKED_BYTES", default=1024 * 1024 * 1024)
MODEL_IMPORT_MAX_MS_PER_IMAGE = env.float("MODEL_IMPORT_MAX_MS_PER_IMAGE", default=20000.0)
MODEL_IMPORT_CHECK_TIMEOUT = env.int("MODEL_IMPORT_CHECK_TIMEOUT", default=100)

# Celery. Embedded default: the filesystem transport (a real broker on local disk, no server needed).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # kombu's default is a relative 'control' folder wherever the process starts (it once ended up committed).
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # A message whose worker died (no ack) is handed out again after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="inference")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# Each worker also consumes a queue of its own (celery@<host>.dq2): the container health check (docker/healthcheck.py)
# sends a ping task there and waits for it to run, which proves that this worker takes tasks from the broker.
CELERY_WORKER_DIRECT = True
# A new prefork pool process loads the model (about 15 s) before it reports ready; Celery's default 4 s would
# kill it again and again.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.int("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=180)
# A job whose worker died this many times while running it (for example killed for memory) is failed instead of
# being handed out again forever; a job hit by transient errors (storage briefly unavailable) is retried with
# backoff this many times. The two are counted apart.
INFERENCE_MAX_ATTEMPTS = env.int("INFERENCE_MAX_ATTEMPTS", default=3)
INFERENCE_MAX_TRANSIENT_RETRIES = env.int("INFERENCE_MAX_TRANSIENT_RETRIES", default=5)
# Each worker process beats every WORKER_HEARTBEAT_SECONDS (core.workers); work held by a process that has not
# beaten for WORKER_HEARTBEAT_TIMEOUT was interrupted and is sent again by the outbox sweep (core.outbox: Celery beat
# every OUTBOX_SWEEP_SECONDS, `worker --beat` in run.sh, the `beat` service in docker). The sweep also sends what never
# reached the broker, what waited in it for OUTBOX_LOST_AFTER_SECONDS while its queue is empty (lost with its data) or
# for OUTBOX_STALE_SECONDS in any case, and delayed steps once due. Unfinished work OUTBOX_OVERDUE_SECONDS after it was
# due is shown as overdue (operations page, /healthz). The INFERENCE_* names of earlier releases are still read.
WORKER_HEARTBEAT_SECONDS = env.int(
    "WORKER_HEARTBEAT_SECONDS", default=env.int("INFERENCE_HEARTBEAT_SECONDS", default=10)
)
WORKER_HEARTBEAT_TIMEOUT = env.int(
    "WORKER_HEARTBEAT_TIMEOUT", default=env.int("INFERENCE_HEARTBEAT_TIMEOUT", default=45)
)
OUTBOX_SWEEP_SECONDS = env.float("OUTBOX_SWEEP_SECONDS", default=env.float("INFERENCE_SWEEP_SECONDS", default=10.0))
OUTBOX_LOST_AFTER_SECONDS = env.int(
    "OUTBOX_LOST_AFTER_SECONDS", default=env.int("INFERENCE_QUEUED_GRACE_SECONDS", default=120)
)
OUTBOX_STALE_SECONDS = env.int("OUTBOX_STALE_SECONDS", default=env.int("INFERENCE_STALE_SECONDS", default=30 * 60))
OUTBOX_OVERDUE_SECONDS = env.int("OUTBOX_OVERDUE_SECONDS", default=15 * 60)
# Sending a task while the broker is down must not hold a web request for long: the job stays queued for the sweep.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# Storage reconciliation (cases.studies.reconciliation): unreferenced files older than the grace period are removed,
# missing ones reported.
STORAGE_RECONCILE_SECONDS = env.int("STORAGE_RECONCILE_SECONDS", default=6 * 3600)
STORAGE_RECONCILE_GRACE_SECONDS = env.int("STORAGE_RECONCILE_GRACE_SECONDS", default=24 * 3600)
# E-mail (a stop rule that trips tells the lead radiologists): only when the site configures a mail server.
EMAIL_HOST = env("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="mammo-platform@localhost")
# Model monitoring (inference.monitoring): daily at MODEL_MONITORING_HOUR (site time), the last MODEL_MONITORING_DAYS
# days computed again (reads and outcomes arrive later than predictions), then the stop rules on the day before.
MODEL_MONITORING_HOUR = env.int("MODEL_MONITORING_HOUR", default=2)
MODEL_MONITORING_DAYS = env.int("MODEL_MONITORING_DAYS", default=30)
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "core.outbox_sweep", "schedule": OUTBOX_SWEEP_SECONDS},
    "model-monitoring": {
        "task": "inference.model_monitoring",
        "schedule": crontab(hour=MODEL_MONITORING_HOUR, minute=15),
    },
    "reconcile-storage": {
        "task": "cases.reconcile_storage",
        "schedule": float(STORAGE_RECONCILE_SECONDS),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mammography screening platform API",
    "DESCRIPTION": "Upload mammograms, follow asynchronous AI analysis, read results.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {
        "StudyStatusEnum": "cases.models.clinical.Study.Status",
        "ImageLateralityEnum": "cases.models.clinical.Image.Laterality",
        "BreastLateralityEnum": "cases.models.reading.Laterality",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # error_reference: the reference a 500 page showed the user, appended to Django's own log line of that error.
    "filters": {"error_reference": {"()": "core.error_pages.ErrorReferenceFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["error_reference"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# DICOM: the listener, DICOMweb and where AI results are sent (mammo_platform/settings_dicom.py).
from mammo_platform.settings_dicom import dicom_settings  # noqa: E402

globals().update(dicom_settings(env, var_dir=VAR_DIR))
# pynetdicom logs every PDU at INFO; the listener logs what matters itself.
LOGGING["loggers"]["pynetdicom"] = {"level": env("PYNETDICOM_LOG_LEVEL", default="WARNING")}
