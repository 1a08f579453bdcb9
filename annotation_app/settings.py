"""Settings for the annotation platform, read from the environment.

With nothing set, the product runs embedded: an SQLite file, Celery on a filesystem broker in VAR_DIR and
media in a local folder, so a laptop with only Python and Node runs everything. Production sets
DATABASE_URL (Postgres), CELERY_BROKER_URL (Redis), SECRET_KEY, DEBUG=0, ALLOWED_HOSTS and storage.
"""
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from annotation_app.lib.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ANNOTATION_VAR_DIR", str(BASE_DIR / "var")))
# The embedded default keeps its database, broker queue and media here.
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "annotation_app.lib.errors.csrf_failure"  # a JSON 403 the browser app can show

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "annotation_app.projects",
    "annotation_app.imaging",
    "annotation_app.rounds",
    "annotation_app.annotations",
    "annotation_app.propagation",
    "annotation_app.timing",
    "annotation_app.pacs",
    "annotation_app.exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "annotation_app.urls"
WSGI_APPLICATION = "annotation_app.wsgi.application"
ASGI_APPLICATION = "annotation_app.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database: embedded SQLite unless DATABASE_URL names a server (Postgres in production and CI).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded web server and worker share the file; wait for each other's writes. A transaction
    # takes the write lock when it begins (IMMEDIATE): one that read first and then wrote would get
    # "database is locked" at once, whatever the timeout, when another process wrote meanwhile (the
    # embedded soak found it). WAL: readers (the browser's polling) never wait for a writer.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=30,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (the built frontend is served from here in the embedded default).
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST] if FRONTEND_DIST.is_dir() else []

# --- Storage: a local folder by default; S3-compatible storage through django-storages in production.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
if STORAGE_BACKEND == "local":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STORAGE_BACKEND == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET", "annotations"),
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", ""),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", ""),
            "region_name": env_str("S3_REGION", "") or None,
        },
    }
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'local' or 's3', got {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads go to disk in chunks, never whole into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# --- Who may start a project: "staff" (staff users and users a staff member granted
# projects.add_project in the admin) or "anyone" signed in.
PROJECT_CREATORS = env_str("PROJECT_CREATORS", "staff")
if PROJECT_CREATORS not in ("staff", "anyone"):
    raise ImproperlyConfigured(f"PROJECT_CREATORS must be 'staff' or 'anyone', not {PROJECT_CREATORS!r}")

# --- REST framework: one permission policy, scoped querysets, JSON errors.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["annotation_app.lib.permissions.ProjectRolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "annotation_app.lib.pagination.StandardPagination",  # ?page_size= up to 500
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation_app.lib.errors.json_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedSAM2 annotation platform API",
    "DESCRIPTION": "Projects, cases, targets, prompts, masks, propagation jobs, rounds and models.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a `status` (and `kind`) with different choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "TargetStatusEnum": "annotation_app.annotations.models.TargetStatus",
        "RoundStatusEnum": "annotation_app.rounds.models.RoundStatus",
        "ModelStatusEnum": "annotation_app.rounds.models.ModelStatus",
        # training runs and propagation jobs share one set of states
        "RunStatusEnum": "annotation_app.rounds.models.TrainingStatus",
        "CaseStatusEnum": "annotation_app.imaging.models.CaseStatus",
        "ExportStatusEnum": "annotation_app.exports.models.ExportStatus",
    },
}

# --- Celery: three queues; routing by task name. Embedded default: a filesystem broker in VAR_DIR.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast/pidbox messages (celery inspect, remote control) go here, not into the CWD.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    # Which embedded broker (README, "Embedded broker"): "files" (default) is kombu's folder layout with
    # atomic publish/claim and redelivery of a dead consumer's messages (annotation_app.lib.embedded_broker);
    # "sqlite" (kombu's SQLAlchemy transport on VAR_DIR/broker.sqlite3, needs SQLAlchemy) and "kombu-files"
    # (kombu's own filesystem transport, which can hand out a half-written message: kombu #1551) exist
    # for benchmarks/bench_embedded_broker.py.
    EMBEDDED_BROKER = env_str("EMBEDDED_BROKER", "files")
    if EMBEDDED_BROKER == "files":
        CELERY_BROKER_TRANSPORT = "annotation_app.lib.embedded_broker:Transport"
    elif EMBEDDED_BROKER == "sqlite":
        CELERY_BROKER_TRANSPORT = "annotation_app.lib.embedded_broker_sqlite:Transport"
        CELERY_BROKER_TRANSPORT_OPTIONS = {"sqlite_path": str(_broker_dir / "broker.sqlite3"), "polling_interval": 0.1}
    elif EMBEDDED_BROKER != "kombu-files":
        raise ImproperlyConfigured(f"EMBEDDED_BROKER must be files, sqlite or kombu-files, got {EMBEDDED_BROKER!r}")
    # No broadcast on an embedded broker: workers run without remote control (revoke, inspect); the
    # web process reads their presence from VAR_DIR/workers and cancels through the job's flag.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = EMBEDDED_BROKER == "kombu-files"
    # Celery's file result backend refuses to start unless its folder already exists.
    (VAR_DIR / "celery-results").mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", f"file://{VAR_DIR / 'celery-results'}")
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300)

# --- Model selection for workers (inference_worker reads these; the web process never loads torch).
MEDSAM2_CHECKPOINT = env_str("MEDSAM2_CHECKPOINT", "")
MEDSAM2_CONFIG = env_str("MEDSAM2_CONFIG", "medsam2_t512")
MEDSAM2_DEVICE = env_str("MEDSAM2_DEVICE", "")

# --- Fine-tuning on the `training` queue (inference_worker/training.py; README "The learning loop").
# A run may last many hours: its own time limit, a heartbeat on the row every TRAINING_HEARTBEAT_S, and a
# run whose heartbeat is older than TRAINING_STALE_AFTER_S is sent again by the workers' recovery loop
# and resumes from its last checkpoint in storage (a late broker redelivery is refused by the claim).
TRAINING_TIME_LIMIT_S = env_int("TRAINING_TIME_LIMIT_S", 48 * 3600)
TRAINING_HEARTBEAT_S = env_int("TRAINING_HEARTBEAT_S", 10)
TRAINING_STALE_AFTER_S = env_int("TRAINING_STALE_AFTER_S", 120)
TRAINING_PROGRESS_S = env_int("TRAINING_PROGRESS_S", 3)
TRAINING_MAX_ATTEMPTS = env_int("TRAINING_MAX_ATTEMPTS", 3)

# --- The workers (inference_worker/), read here once like every setting (lib/env.py: a bad value fails
# at start instead of falling back silently). MEDSAM2_DEVICE above: "" = the one rule in
# model_cache.choose_device (cuda when a GPU is visible and torch is a CUDA build, else cpu).
MEDSAM2_SESSIONS = env_int("MEDSAM2_SESSIONS", 32)  # live predictor sessions kept per worker
MEDSAM2_FEATURE_CACHE_BYTES = env_int("MEDSAM2_FEATURE_CACHE_BYTES", 4 * 1024**3)
MEDSAM2_FAST = env_bool("MEDSAM2_FAST", True)  # VolumePredictor(fast=...) in the propagation task
MEDSAM2_WORKER_RESTARTS = env_int("MEDSAM2_WORKER_RESTARTS", 0)  # set by the supervisor for its child
MEDSAM2_TEST_FRAME_DELAY_S = env_float("MEDSAM2_TEST_FRAME_DELAY_S", 0.0)  # tests: slow frames down
PROPAGATION_HEARTBEAT_S = env_float("PROPAGATION_HEARTBEAT_S", 5.0)
PROPAGATION_STALE_AFTER_S = env_float("PROPAGATION_STALE_AFTER_S", 60.0)
PROPAGATION_MAX_ATTEMPTS = env_int("PROPAGATION_MAX_ATTEMPTS", 3)
PROPAGATION_RECOVERY_INTERVAL_S = env_float("PROPAGATION_RECOVERY_INTERVAL_S", 30.0)
PROPAGATION_PRESENCE_INTERVAL_S = env_float("PROPAGATION_PRESENCE_INTERVAL_S", 5.0)

# An ingest's claim on its case (imaging/ingest_recovery.py): a heartbeat every INGEST_HEARTBEAT_S; a claim
# older than INGEST_STALE_AFTER_S is taken back by the workers' recovery loop, and after
# INGEST_MAX_ATTEMPTS lost workers the case fails with the reason.
INGEST_HEARTBEAT_S = env_float("INGEST_HEARTBEAT_S", 10.0)
INGEST_STALE_AFTER_S = env_float("INGEST_STALE_AFTER_S", 60.0)
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 3)

# --- Uploads: limits on what one may contain (each raisable without code changes) and the server-side
# folder that `manage.py ingest --folder` and the import-folder API read (annotation_app/imaging/limits.py).
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 4 * 1024**3)  # one request body, all files
IMPORT_MAX_UNCOMPRESSED_BYTES = env_int("IMPORT_MAX_UNCOMPRESSED_BYTES", 8 * 1024**3)  # all archive entries
# uncompressed/compressed size of one archive entry over 1 MiB (tiny headers compress very well)
IMPORT_MAX_COMPRESSION_RATIO = env_float("IMPORT_MAX_COMPRESSION_RATIO", 100.0)
IMPORT_MAX_FILES = env_int("IMPORT_MAX_FILES", 20000)  # entries in one archive
IMPORT_MAX_DIM = env_int("IMPORT_MAX_DIM", 4096)  # largest side of an image (rows, columns)
IMPORT_MAX_FRAMES = env_int("IMPORT_MAX_FRAMES", 20000)  # slices or frames
IMPORT_MAX_VOXELS = env_int("IMPORT_MAX_VOXELS", 600_000_000)  # x channels; 600 M int16 = 1.2 GB array
# relative tolerance on the spacing between DICOM slices before a series counts as inconsistent
IMPORT_SLICE_SPACING_TOLERANCE = env_float("IMPORT_SLICE_SPACING_TOLERANCE", 0.05)
IMPORT_DIR = env_str("IMPORT_DIR", "")
# The demo's accounts (manage.py load_demo: "" = its documented default) and the demo admin ("" = random).
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "")
DEMO_ADMIN_PASSWORD = env_str("DEMO_ADMIN_PASSWORD", "")

# --- Production hardening (checked by `manage.py check --deploy`).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
