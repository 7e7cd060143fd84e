"""Settings, all from the environment (12-factor).

Two modes:
- production-like: DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) are set, SECRET_KEY is required.
- embedded default (neither set): SQLite and Celery's filesystem broker under MAMMO_VAR_DIR, a random secret key
  generated once and kept in that folder. Uploads are still processed asynchronously by a real Celery worker.
"""

import secrets
from pathlib import Path

import environ
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
    "rest_framework.authtoken",
    "drf_spectacular",
    "accounts",
    "cases",
    "inference",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.LoginRequiredExceptApiMiddleware",
    "cases.audit.AuditContextMiddleware",
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

# Failed sign-in throttling (per username and per client address).
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60)

# Sessions and cookies. Secure cookies default on except in the embedded default, which runs over plain HTTP on
# localhost; behind TLS set SECURE_COOKIES=true (docker/ does).
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=not EMBEDDED and not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP inside the network
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)

CACHES = {
    "default": {
        **env.cache(
            "CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}" if EMBEDDED else "redis://127.0.0.1:6379/1"
        ),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default=""),
    }
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "mammo_platform" / "static"]
STORAGES = {
    # Uploaded originals, previews and heatmaps. Never served from a public URL: only through views that check
    # the user's right to see the study (cases.views.image_file).
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media"))), "base_url": None},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = STORAGES["default"]["OPTIONS"]["location"]

# Uploads. Files larger than the in-memory limit are streamed to a temporary file by Django.
MAMMO_MAX_FILE_BYTES = env.int("MAMMO_MAX_FILE_BYTES", default=200 * 1024 * 1024)
MAMMO_MAX_PIXELS = env.int("MAMMO_MAX_PIXELS", default=60_000_000)
MAMMO_MAX_FILES_PER_UPLOAD = env.int("MAMMO_MAX_FILES_PER_UPLOAD", default=50)
DATA_UPLOAD_MAX_NUMBER_FILES = MAMMO_MAX_FILES_PER_UPLOAD
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
PREVIEW_MAX_SIDE = env.int("PREVIEW_MAX_SIDE", default=1024)

# Whether readers see the AI result while reading (the reading page shows or hides it; recorded on each read).
READERS_SEE_AI = env.bool("READERS_SEE_AI", default=True)

# Models: registered model files are copied here (content-addressed); the shipped default lives in default_model/.
MODEL_DIR = Path(env("MODEL_DIR", default=str(VAR_DIR / "models")))
MAMMO_DATA_DIR = env("MAMMO_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data"))
DEFAULT_MODEL_DIR = BASE_DIR / "default_model"

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
        # Exchange tables; kombu's default is ./control in the working directory (the repository).
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
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
# being handed out again forever.
INFERENCE_MAX_ATTEMPTS = env.int("INFERENCE_MAX_ATTEMPTS", default=3)
# The stale-job sweep (Celery beat: `worker --beat` in run.sh, the `beat` service in docker): every
# INFERENCE_SWEEP_SECONDS, jobs queued or running for longer than INFERENCE_STALE_SECONDS are sent again (a message
# lost with the broker, a worker that vanished). Tasks are idempotent, so a slow job sent again is not run twice.
INFERENCE_STALE_SECONDS = env.int("INFERENCE_STALE_SECONDS", default=30 * 60)
INFERENCE_SWEEP_SECONDS = env.int("INFERENCE_SWEEP_SECONDS", default=5 * 60)
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-inference-jobs": {
        "task": "inference.requeue_stale_jobs",
        "schedule": float(INFERENCE_SWEEP_SECONDS),
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cases.api_errors.exception_handler",
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
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
