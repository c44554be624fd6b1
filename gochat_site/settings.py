"""GoChat settings: every value comes from the environment, read here and nowhere else.

With none of DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS, CELERY_BROKER_URL set,
the project runs as the *embedded default*: SQLite, in-memory channel layer, cache,
presence and bus, and Celery tasks run eagerly. Each variable switches one piece to
the real service. docs/configuration.md lists every variable with its default.
"""
from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- Core -------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
# Production must set SECRET_KEY; the embedded default gets a fixed development key
# so that tokens survive a restart of `make run`.
SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-gochat-secret-key-change-me-in-production")
# seed_demo's superuser (accounts.checks.DEMO_ADMIN_USERNAME, a published password) is
# allowed where nobody else can reach it: under DEBUG and in the embedded default (no
# DATABASE_URL). Elsewhere seed_demo does not create it and the system check
# accounts.E001 refuses a database that has it (migrate stops).
ALLOW_DEMO_ADMIN = env_bool("ALLOW_DEMO_ADMIN", DEBUG or not os.environ.get("DATABASE_URL"))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Identity of this gateway process: names its downstream topic and its presence entries.
GATEWAY_ID = env_str("GATEWAY_ID", f"gw-{socket.gethostname()}")
# Snowflake worker ids, one scheme (docs/architecture.md "Snowflake worker ids"): with
# REDIS_URL set every process holds its id as a Redis lease. A fixed SNOWFLAKE_WORKER_ID
# (deployments use 0..511) is claimed there and refused if another live process holds it;
# unset, a free id is leased from SNOWFLAKE_LEASE_POOL_START..1023. No Redis: fixed id or pid.
SNOWFLAKE_WORKER_ID = env_str("SNOWFLAKE_WORKER_ID", "")
# Lease lifetime; renewed every third of it. A process that cannot renew stops issuing ids
# at two thirds, before Redis could give the id to another process.
SNOWFLAKE_LEASE_TTL_SECONDS = env_float("SNOWFLAKE_LEASE_TTL_SECONDS", 30.0)
SNOWFLAKE_LEASE_POOL_START = env_int("SNOWFLAKE_LEASE_POOL_START", 512)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    # Swagger UI's JavaScript and CSS as static files: /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "groups",
    "messaging",
    "tasks",
    "web",
]

MIDDLEWARE = [
    # First: every log line of the request, and the response, carry its trace id.
    "gochat_site.tracing.TraceIdMiddleware",
    # Before anything that validates the Host header: /healthz, /readyz and /metrics
    # answer kubelet probes and Prometheus, which address the pod by IP (gochat_site.probes).
    "gochat_site.probes.ProbePathsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the web client, admin) from the gateway itself: daphne has no
    # static file handler of its own and DEBUG is off by default.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gochat_site.urls"
WSGI_APPLICATION = "gochat_site.wsgi.application"
ASGI_APPLICATION = "gochat_site.asgi.application"
AUTH_USER_MODEL = "accounts.User"
# Checked by accounts.services.register_user (users/register).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("username", "email", "nickname")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env_int("PASSWORD_MIN_LENGTH", 8)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# On: WhiteNoise finds static files in the apps, so no collectstatic is needed (the
# embedded default). A deployment that runs collectstatic into STATIC_ROOT may turn it off.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Freeze the objects made at start-up out of the garbage collector's full collections
# (gochat_site/gc_freeze.py): a full collection of the gateway paused a message 93 ms.
GC_FREEZE_AT_STARTUP = env_bool("GC_FREEZE_AT_STARTUP", True)

# --- Database -----------------------------------------------------------------------------
# https://github.com/jazzband/dj-database-url
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    _db = dj_database_url.parse(DATABASE_URL)
    if _db["ENGINE"] == "django.db.backends.postgresql":
        _db.setdefault("OPTIONS", {})
        # psycopg 3 connection pool; CONN_MAX_AGE must stay 0 with the pool.
        _db["OPTIONS"]["pool"] = {
            "min_size": env_int("DB_POOL_MIN_SIZE", 1),
            "max_size": env_int("DB_POOL_MAX_SIZE", 20),
            "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
        }
        _db["CONN_MAX_AGE"] = 0
        # psycopg prepares a statement after this many runs on one connection; the message
        # hot path's statements are built to be prepared (messaging.hot_sql.cursor). 0
        # turns preparing off: needed behind a PgBouncer in transaction mode older than
        # 1.21 (or without max_prepared_statements), where a prepared statement does not
        # follow the client to its next server connection.
        _prepare_threshold = env_int("DB_PREPARE_THRESHOLD", 5)
        _db["OPTIONS"]["prepare_threshold"] = _prepare_threshold if _prepare_threshold > 0 else None
        if os.environ.get("TEST_DATABASE_NAME"):
            _db["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}
        # Django's backend with every database error counted (gochat_db_errors_total).
        _db["ENGINE"] = "gochat_site.db_backends.postgresql"
    DATABASES = {"default": _db}
else:
    # The embedded default (docs/embedded.md). WAL: readers never block the writer nor
    # the writer them, so a reader can never make a write fail. synchronous NORMAL in
    # WAL never corrupts the file; a power loss or OS crash may roll back the last
    # commits (an application crash loses none); FULL fsyncs every commit instead.
    SQLITE_SYNCHRONOUS = env_str("SQLITE_SYNCHRONOUS", "NORMAL").upper()
    # A thread of each process checkpoints the WAL this often (PASSIVE), so no COMMIT on
    # the message path does it (gochat_site/db_backends/sqlite3/checkpoint.py); 0 leaves
    # it to SQLite's automatic checkpoint at 1,000 pages. The automatic one stays as a
    # safety net at SQLITE_WAL_AUTOCHECKPOINT_PAGES (4 KiB pages) while the thread runs.
    SQLITE_CHECKPOINT_SECONDS = env_float("SQLITE_CHECKPOINT_SECONDS", 1.0)
    SQLITE_WAL_AUTOCHECKPOINT_PAGES = env_int("SQLITE_WAL_AUTOCHECKPOINT_PAGES", 20000)
    if SQLITE_SYNCHRONOUS not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA, not {SQLITE_SYNCHRONOUS!r}")
    DATABASES = {
        "default": {
            # Django's sqlite3 backend with every database error counted.
            "ENGINE": "gochat_site.db_backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait
                # their turn (busy timeout) instead of failing with "database is locked"
                # when a read transaction cannot be upgraded.
                "transaction_mode": "IMMEDIATE",
                # Seconds a connection waits for the write lock: Python's sqlite3 passes
                # it to sqlite3_busy_timeout().
                "timeout": env_float("SQLITE_BUSY_TIMEOUT_SECONDS", 20.0),
                "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={SQLITE_SYNCHRONOUS}",
            },
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH", "") or None},
            # Persistent connections: the embedded logic loop and the gateway reach the
            # database through database_sync_to_async, which closes a connection past
            # CONN_MAX_AGE around every call; at 0 each consumed batch reopened the file
            # and ran the PRAGMAs again (~17% of the embedded server's CPU at one message
            # in flight, py-spy in docs/benchmarks.md). A file needs no health check.
            "CONN_MAX_AGE": None,
        }
    }

# --- Redis: cache, channel layer, presence ------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    from gochat_site import redis_errors as _redis_errors

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "gochat"),
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                # A hung Redis must not hold a database thread (routing's mute list,
                # fan-out checkpoints) forever: fail after a bounded wait instead.
                "SOCKET_CONNECT_TIMEOUT": env_float("CACHE_REDIS_SOCKET_TIMEOUT_SECONDS", 2.0),
                "SOCKET_TIMEOUT": env_float("CACHE_REDIS_SOCKET_TIMEOUT_SECONDS", 2.0),
                # Failed commands and connects counted in gochat_redis_errors_total.
                "CONNECTION_POOL_KWARGS": {"connection_class": _redis_errors.CacheConnection},
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # Above the layer's 5 s BZPOPMIN wait: with the default 5 s
                        # socket timeout idle sockets died with close 1011.
                        "socket_timeout": env_float("CHANNEL_LAYER_SOCKET_TIMEOUT", 15.0),
                        # A mass disconnect exhausted the default pool of 100.
                        "max_connections": env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 10000),
                    }
                ],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "gochat"),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Presence backend: "redis" when REDIS_URL is set, else the in-process one.
PRESENCE_BACKEND = env_str("PRESENCE_BACKEND", "redis" if REDIS_URL else "memory")
# Seconds a presence entry lives without a heartbeat.
PRESENCE_TTL_SECONDS = env_int("PRESENCE_TTL_SECONDS", 90)
# Users per batched presence lookup (one Redis round trip each).
PRESENCE_BATCH_SIZE = env_int("PRESENCE_BATCH_SIZE", 200)
# Gateway presence pool per event loop: at most this many Redis connections; a caller
# beyond it waits up to PRESENCE_REDIS_POOL_TIMEOUT_SECONDS for one instead of failing.
PRESENCE_REDIS_MAX_CONNECTIONS = env_int("PRESENCE_REDIS_MAX_CONNECTIONS", 50)
PRESENCE_REDIS_POOL_TIMEOUT_SECONDS = env_float("PRESENCE_REDIS_POOL_TIMEOUT_SECONDS", 10.0)
# A presence command with no reply for this long fails (and its socket closes with 1011).
PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS = env_float("PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS", 5.0)

# --- Presence push (issue 11, webux): `presence` frames to the users who can see a change ---
# Changes are collected per gateway process and pushed at most this often (batched).
PRESENCE_PUSH_INTERVAL_SECONDS = env_float("PRESENCE_PUSH_INTERVAL_SECONDS", 1.0)
# Groups larger than this do not push their members' presence (single chats always do).
PRESENCE_PUSH_MAX_GROUP_SIZE = env_int("PRESENCE_PUSH_MAX_GROUP_SIZE", 200)
# How long a gateway trusts its cached "who can see this user" set.
PRESENCE_WATCHERS_CACHE_SECONDS = env_float("PRESENCE_WATCHERS_CACHE_SECONDS", 10.0)

# --- Kafka bus ----------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "")
BUS_BACKEND = env_str("BUS_BACKEND", "kafka" if KAFKA_BOOTSTRAP_SERVERS else "memory")
KAFKA_UPSTREAM_TOPIC = env_str("KAFKA_UPSTREAM_TOPIC", "im-upstream-topic")
# Formatted with gateway_id.
KAFKA_DOWNSTREAM_TOPIC = env_str("KAFKA_DOWNSTREAM_TOPIC", "im-downstream-topic-{gateway_id}")
KAFKA_TASK_TOPIC = env_str("KAFKA_TASK_TOPIC", "im-task-topic")
KAFKA_TASK_DLQ_TOPIC = env_str("KAFKA_TASK_DLQ_TOPIC", "im-task-dlq")
# Upstream records the logic consumer cannot decode go here instead of stopping the loop.
KAFKA_UPSTREAM_DLQ_TOPIC = env_str("KAFKA_UPSTREAM_DLQ_TOPIC", "im-upstream-dlq")
KAFKA_LOGIC_GROUP = env_str("KAFKA_LOGIC_GROUP", "im-logic-group")
# Static membership of the logic group (group.instance.id, e.g. the pod name of a
# StatefulSet): a restart within the session timeout keeps its partitions without a
# rebalance. Empty = dynamic member (the Tansu test broker stalls with static members).
KAFKA_LOGIC_INSTANCE_ID = env_str("KAFKA_LOGIC_INSTANCE_ID", "")
# partition.assignment.strategy of every consumer. cooperative-sticky: a member joining or
# leaving moves only the partitions that change owner, the others keep being consumed;
# with the eager default (range) the Tansu test broker wedges a group whose member is
# slow to rejoin. Every member of a group must use the same one: switch a running
# deployment by stopping all logic processes first. Empty = librdkafka's default.
KAFKA_ASSIGNMENT_STRATEGY = env_str("KAFKA_ASSIGNMENT_STRATEGY", "cooperative-sticky")
KAFKA_TASK_BRIDGE_GROUP = env_str("KAFKA_TASK_BRIDGE_GROUP", "im-task-bridge-group")
# Partitions of the task topic: the most task bridges that can consume side by side.
KAFKA_TASK_PARTITIONS = env_int("KAFKA_TASK_PARTITIONS", 2)
KAFKA_UPSTREAM_PARTITIONS = env_int("KAFKA_UPSTREAM_PARTITIONS", 4)
# Real Kafka is fine with its defaults; the Tansu test broker needs a short session
# timeout to let a consumer join in seconds, and a short fetch wait to answer promptly.
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 45000)
KAFKA_HEARTBEAT_INTERVAL_MS = env_int("KAFKA_HEARTBEAT_INTERVAL_MS", 3000)
KAFKA_FETCH_WAIT_MAX_MS = env_int("KAFKA_FETCH_WAIT_MAX_MS", 100)
# 0: a record leaves at once. Under load librdkafka still batches what queues while a
# request is in flight, so this costs no throughput (peerbench s1 1,352/1,431 msg/s at 0
# against 1,316/1,354 at 2) and saves two lingers on every message's path.
KAFKA_LINGER_MS = env_int("KAFKA_LINGER_MS", 0)
# The linger of a process that flushes its producer after every consumed batch (the logic,
# the task bridge: messaging.bus.flush_per_batch). flush() sends what lingers at once, so
# this never delays a record; it keeps librdkafka from sending a batch's first record
# alone, so one batch's acks and new-messages for a gateway leave in one Produce request
# (at 0, 1.8 requests per message at peerbench s1u; docs/benchmarks.md).
KAFKA_BATCH_LINGER_MS = env_int("KAFKA_BATCH_LINGER_MS", 20)
# How long the producer keeps retrying a record before reporting it failed (librdkafka's
# message.timeout.ms, 300 s by default). A failure is what makes the producer replace
# itself (messaging/bus/kafka.py), so the default would leave a gateway producing into a
# wedged producer for five minutes after a broker lost its data; the client resends an
# unacknowledged message anyway.
KAFKA_DELIVERY_TIMEOUT_MS = env_int("KAFKA_DELIVERY_TIMEOUT_MS", 10000)
# Messages taken per consume() call by the logic loop and the task bridge.
KAFKA_CONSUME_BATCH = env_int("KAFKA_CONSUME_BATCH", 200)

# --- Messaging rules ----------------------------------------------------------------------
MESSAGE_MAX_CONTENT_LENGTH = env_int("MESSAGE_MAX_CONTENT_LENGTH", 4000)

# --- Message lifecycle (issue 10: recall, edit; docs/configuration.md) ---------------------
# How long after sending its sender may recall a message (group owners/admins: any time).
MESSAGE_RECALL_SECONDS = env_int("MESSAGE_RECALL_SECONDS", 120)
# How long after sending its sender may edit a message.
MESSAGE_EDIT_SECONDS = env_int("MESSAGE_EDIT_SECONDS", 900)
# --- end message lifecycle ----------------------------------------------------------------

# Largest WebSocket text frame accepted, in bytes.
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 16384)
# Per-user frames per WS_RATE_WINDOW_SECONDS before error 1006.
WS_RATE_LIMIT = env_int("WS_RATE_LIMIT", 50)
WS_RATE_WINDOW_SECONDS = env_float("WS_RATE_WINDOW_SECONDS", 1.0)
# A socket that sends nothing (not even ping) for this long is closed (code 4008).
WS_IDLE_TIMEOUT_SECONDS = env_float("WS_IDLE_TIMEOUT_SECONDS", 120.0)
# SIGTERM drain of a gateway (messaging/gateway/drain.py): its sockets are closed with 1012
# spread over this many seconds, so clients do not all reconnect elsewhere at once. Keep it
# under the orchestrator's grace period (k8s terminationGracePeriodSeconds, default 30).
WS_DRAIN_SECONDS = env_float("WS_DRAIN_SECONDS", 5.0)
# Per-user frame limit backend: "redis" counts a user's frames across every socket and
# gateway (one round trip per frame); "memory" counts per process (embedded default).
WS_RATE_LIMIT_BACKEND = env_str("WS_RATE_LIMIT_BACKEND", "redis" if REDIS_URL else "memory")
# Live sockets one user may hold (all gateways, counted in presence); more close with 4029.
WS_MAX_CONNECTIONS_PER_USER = env_int("WS_MAX_CONNECTIONS_PER_USER", 10)
# A frame whose handling (presence, bus, database) takes longer closes the socket (1011).
WS_FRAME_TIMEOUT_SECONDS = env_float("WS_FRAME_TIMEOUT_SECONDS", 30.0)
# Seconds between the gateway's broker checks; two failures in a row close senders with 1011.
WS_UPSTREAM_CHECK_SECONDS = env_float("WS_UPSTREAM_CHECK_SECONDS", 5.0)
# Bytes queued to a socket that does not read before it is closed (4010, slow consumer).
WS_MAX_SEND_BUFFER_BYTES = env_int("WS_MAX_SEND_BUFFER_BYTES", 1048576)
# Gateway membership cache (messaging/gateway/membership.py): entry lifetime (the bound
# when an invalidation was lost) and how many (user, conversation) pairs a process keeps.
MEMBERSHIP_CACHE_TTL_SECONDS = env_float("MEMBERSHIP_CACHE_TTL_SECONDS", 60.0)
MEMBERSHIP_CACHE_MAX_ENTRIES = env_int("MEMBERSHIP_CACHE_MAX_ENTRIES", 100000)
# Groups with more members than this go through the Celery fan-out planner; smaller ones
# are routed by the logic in its batch. Inline, one message to 1,000 online members holds
# the logic ~15 ms and to 2,000 ~26 ms (growing with the size: the bound keeps a message
# from holding its partition longer than about two batches of one-to-one traffic), while
# the planner path adds the worker hop, a planner and its batch tasks, ~150 ms to the
# last member: peerbench s2k (1,001 members) production last member 245-285 ms through
# the planner against 98-128 ms inline (2026-12-03).
LARGE_GROUP_THRESHOLD = env_int("LARGE_GROUP_THRESHOLD", 2000)
# --- Read receipts and typing (issue 10, docs/realtime.md "Receipts and typing") ---------
# Groups with more members get no receipt frames (a read would fan out to every member);
# their read counts stay visible in history/sync and GET conversations/{id}/receipts.
RECEIPT_MAX_GROUP_SIZE = env_int("RECEIPT_MAX_GROUP_SIZE", 100)
# Typing indicators are dropped for groups with more members than this.
TYPING_MAX_GROUP_SIZE = env_int("TYPING_MAX_GROUP_SIZE", 200)
# At most one typing event per (user, conversation) per this many seconds, per gateway.
TYPING_THROTTLE_SECONDS = env_float("TYPING_THROTTLE_SECONDS", 2.0)
# Routing enqueues tasks.index_message per message only where the search backend needs it.
# Neither does (tasks.search backends' indexed_on_write): PostgreSQL's GIN expression
# index and SQLite's FTS5 triggers (messaging/0004) are kept by the database at write.
SEARCH_INDEX_ON_WRITE = env_bool("SEARCH_INDEX_ON_WRITE", False)
GROUP_DEFAULT_MAX_MEMBERS = env_int("GROUP_DEFAULT_MAX_MEMBERS", 100000)
HISTORY_MAX_LIMIT = env_int("HISTORY_MAX_LIMIT", 100)
# Embedded default runs the logic loop as a task of the gateway's event loop.
EMBEDDED_LOGIC = env_bool("EMBEDDED_LOGIC", BUS_BACKEND == "memory")

# --- Celery (im-task) ---------------------------------------------------------------------
_CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not _CELERY_BROKER_URL)
# Eager tasks never reach a broker, but Celery still builds a (never connected) producer
# for each apply_async: with no URL it is kombu's amqp default, which logged "No hostname
# was supplied" at the first task of every embedded run. Naming kombu's in-process
# transport says what the embedded default really uses. Without eager mode there is no
# default: `make worker/beat/flower` stop and say CELERY_BROKER_URL is missing.
CELERY_BROKER_URL = _CELERY_BROKER_URL or ("memory://localhost/" if CELERY_TASK_ALWAYS_EAGER else "")
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", False)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
# Queues, routes, time limits and the beat schedule: docs/tasks.md.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# By task name, so a process that never imported the task (send_task) routes it too.
CELERY_TASK_ROUTES = {
    "tasks.large_group_fanout": {"queue": "fanout"},
    "tasks.fanout_batch": {"queue": "fanout"},
    "tasks.fanout_sweep": {"queue": "fanout"},
    "tasks.offline_push": {"queue": "push"},
    "tasks.index_message": {"queue": "index"},
}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
# acks_late tasks: a worker takes one message at a time, so a crash strands only that one.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1)
# Redis broker only (RabbitMQ re-queues at once when a worker's connection drops): an
# unacknowledged task, whose worker died, is handed out again once it is older than the
# visibility timeout; keep that above the longest task's run time (CELERY_TASK_TIME_LIMIT).
# Workers look for such tasks every interval x throttle seconds, one at a time under a
# Redis lock that expires after the mutex time if its holder died.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
    "unacked_mutex_expire": env_int("CELERY_UNACKED_MUTEX_EXPIRE", 300),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Our JSON log formatter stays in charge of the worker's log lines.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat touches BEAT_HEARTBEAT_FILE on every scheduler tick (empty = off), which its
# liveness probe checks (python -m gochat_site.heartbeat FILE MAX_AGE); ticks come at
# least every CELERY_BEAT_MAX_LOOP_INTERVAL seconds.
CELERY_BEAT_SCHEDULER = "gochat_site.beat:HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = env_int("CELERY_BEAT_MAX_LOOP_INTERVAL", 60)
BEAT_HEARTBEAT_FILE = env_str("BEAT_HEARTBEAT_FILE", "")
CELERY_BEAT_SCHEDULE = {
    "archive-messages": {"task": "tasks.archive_messages", "schedule": crontab(hour=3, minute=0)},
    "daily-stats": {"task": "tasks.daily_stats", "schedule": crontab(hour=0, minute=10)},
    "sweep-presence": {"task": "tasks.sweep_presence", "schedule": env_float("PRESENCE_SWEEP_SECONDS", 60.0)},
    # Attachments (issue 10): uploads never sent, with their files.
    "sweep-attachments": {"task": "tasks.sweep_attachments", "schedule": env_float("ATTACHMENT_SWEEP_SECONDS", 3600.0)},
}
# Large-group fan-out: members per batch (one presence round trip, one envelope per
# gateway each), and an optional cap on batches per second (0 = as fast as possible)
# that spreads a 100k-member burst over time for the gateways' sake.
FANOUT_BATCH_SIZE = env_int("FANOUT_BATCH_SIZE", 200)
FANOUT_MAX_BATCHES_PER_SECOND = env_float("FANOUT_MAX_BATCHES_PER_SECOND", 0.0)
# How long a fan-out's progress checkpoint outlives its last batch (redeliveries, retries).
FANOUT_CHECKPOINT_TTL_SECONDS = env_int("FANOUT_CHECKPOINT_TTL_SECONDS", 86400)
MESSAGE_RETENTION_DAYS = env_int("MESSAGE_RETENTION_DAYS", 0)  # 0 = keep forever
ARCHIVE_DIR = env_str("ARCHIVE_DIR", str(BASE_DIR / "var" / "archive"))
# Messages read, written and deleted per step of the archive job.
ARCHIVE_BATCH_SIZE = env_int("ARCHIVE_BATCH_SIZE", 1000)

# --- Attachments: uploads, storage, signed downloads (issue 10, docs/api.md "Attachments") ---
# Largest upload accepted by POST uploads, in bytes (413/1001 with details.max_bytes beyond).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024)
# Content types accepted, as detected from the bytes (never the client's claim); "type/*"
# allows a whole family.
UPLOAD_ALLOWED_TYPES = env_list(
    "UPLOAD_ALLOWED_TYPES",
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,application/zip,"
    "audio/mpeg,audio/ogg,audio/x-wav,audio/mp4,audio/webm,video/mp4,video/webm,video/quicktime",
)
# Lifetime of a signed download URL (history, sync, new-message frames, GET attachments/<id>).
ATTACHMENT_URL_TTL_SECONDS = env_int("ATTACHMENT_URL_TTL_SECONDS", 3600)
# Prefix of the download URLs handed to clients; empty = server-relative ("/api/v1/...").
ATTACHMENT_URL_BASE = env_str("ATTACHMENT_URL_BASE", "")
# An upload never attached to a message for this long is deleted with its files.
ATTACHMENT_ORPHAN_SECONDS = env_int("ATTACHMENT_ORPHAN_SECONDS", 24 * 3600)
# (ATTACHMENT_SWEEP_SECONDS, the sweep interval, is read by CELERY_BEAT_SCHEDULE above.)
# Longest side of an image thumbnail, in pixels.
ATTACHMENT_THUMBNAIL_SIZE = env_int("ATTACHMENT_THUMBNAIL_SIZE", 320)
# Where uploads are kept: "local" (the filesystem under MEDIA_ROOT, the embedded default)
# or "s3" (any S3-compatible store through django-storages; downloads redirect to a
# presigned URL of the store).
ATTACHMENT_STORAGE = env_str("ATTACHMENT_STORAGE", "local").lower()
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
if ATTACHMENT_STORAGE == "s3":
    _attachment_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            # No defaults for the bucket and keys: production names its own. Empty keys
            # let boto3 find credentials itself (instance role, AWS_* env, profile).
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", ""),
            "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            # MinIO, Ceph, R2, ...: the store's URL; empty = AWS itself.
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", "") or None,
            "signature_version": env_str("AWS_S3_SIGNATURE_VERSION", "s3v4"),
            "location": env_str("AWS_LOCATION", "attachments"),
            # Private objects, reached only through presigned URLs that live as long as ours.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": ATTACHMENT_URL_TTL_SECONDS,
            "file_overwrite": False,
        },
    }
elif ATTACHMENT_STORAGE == "local":
    _attachment_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(MEDIA_ROOT) / "attachments")},
    }
else:
    raise ValueError(f"ATTACHMENT_STORAGE must be local or s3, not {ATTACHMENT_STORAGE!r}")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _attachment_storage,
}

# --- gRPC (run_grpc) ----------------------------------------------------------------------
GRPC_PORT = env_int("GRPC_PORT", 50051)
# Threads serving calls; each holds at most one database connection at a time.
GRPC_MAX_WORKERS = env_int("GRPC_MAX_WORKERS", 16)
# Shared secret of the internal RepoService (metadata `authorization: Bearer <token>`).
# No default: with it unset RepoService refuses every call.
GRPC_SERVICE_TOKEN = env_str("GRPC_SERVICE_TOKEN", "")

# --- Push providers -----------------------------------------------------------------------
APNS_KEY_ID = env_str("APNS_KEY_ID", "")
APNS_TEAM_ID = env_str("APNS_TEAM_ID", "")
APNS_TOPIC = env_str("APNS_TOPIC", "")
APNS_PRIVATE_KEY_PATH = env_str("APNS_PRIVATE_KEY_PATH", "")
APNS_URL = env_str("APNS_URL", "https://api.push.apple.com")
FCM_SERVICE_ACCOUNT_FILE = env_str("FCM_SERVICE_ACCOUNT_FILE", "")
FCM_URL = env_str("FCM_URL", "https://fcm.googleapis.com")
PUSH_COLLAPSE_WINDOW_SECONDS = env_int("PUSH_COLLAPSE_WINDOW_SECONDS", 10)

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "gochat_site.api_errors.exception_handler",
    # JSON only, depth-checked before decoding (gochat_site/request_limits.py).
    "DEFAULT_PARSER_CLASSES": ["gochat_site.request_limits.JsonBodyParser"],
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "20/min"),
        "send": env_str("THROTTLE_SEND", "600/min"),
        "register": env_str("THROTTLE_REGISTER", "30/min"),
    },
}
# Request limits (docs/api.md "Limits and bad input"): a larger body is answered 413/1001,
# a JSON body nested deeper 400/1001, before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("API_MAX_BODY_BYTES", 2_621_440)
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32)
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 3600)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 14 * 86400)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}
from gochat_site.id_params import ID_SCHEMA as _ID_SCHEMA  # noqa: E402 - plain data, no Django import

SPECTACULAR_SETTINGS = {
    "TITLE": "GoChat API",
    "DESCRIPTION": "REST API of GoChat, a horizontally scalable IM backend.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # `<id:...>` path segments (gochat_site/id_params.py): the exact id text accepted.
    "PATH_CONVERTER_OVERRIDES": {"id": _ID_SCHEMA},
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN: the page works
    # without internet (and without a third party seeing who reads the docs).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gochat_site.api_schema.require_bodies_with_min_properties",
    ],
    # Group roles: every role a member may hold, and the two an owner may assign.
    "ENUM_NAME_OVERRIDES": {
        "GroupRoleEnum": ["owner", "admin", "member"],
        "AssignableRoleEnum": ["admin", "member"],
        # Every message type (answers, reply previews) and the ones a client may send.
        "MessageTypeEnum": ["text", "image", "file", "audio", "video", "system"],
        "SendableMessageTypeEnum": ["text", "image", "file", "audio", "video"],
    },
}

# --- Observability: metrics and the delivery trace (docs/observability.md) ----------------
# /metrics for roles without HTTP (run_logic, task bridge, Celery worker): 0 = off.
# Several processes behind one scrape target also need the env var PROMETHEUS_MULTIPROC_DIR.
METRICS_PORT = env_int("METRICS_PORT", 0)
# Seconds between two consumer-lag samples of a Kafka consumer loop (one broker round trip).
KAFKA_LAG_SAMPLE_SECONDS = env_float("KAFKA_LAG_SAMPLE_SECONDS", 15.0)
# Stall detection of the consumer loops (docs/bus-and-presence.md): a partition with
# records after its committed offset that does not move for KAFKA_STALL_SECONDS makes
# its owner (or a member owning nothing) re-create its consumer; sampled every
# KAFKA_STALL_CHECK_SECONDS (1 + partitions broker round trips; 0 = off). Keep the stall
# time above the session timeout: a rebalance after a crash legitimately takes that long.
KAFKA_STALL_SECONDS = env_float("KAFKA_STALL_SECONDS", 90.0)
KAFKA_STALL_CHECK_SECONDS = env_float("KAFKA_STALL_CHECK_SECONDS", 5.0)
# A member that owns nothing while partitions are stuck, or sees a partition nobody moves,
# assigns those partitions by hand for this long instead of re-joining a group that may
# have stopped assigning (messaging/consumers_registry.py; 0 = only re-join).
KAFKA_STALL_TAKEOVER_SECONDS = env_float("KAFKA_STALL_TAKEOVER_SECONDS", 60.0)
# run_logic's /healthz, /readyz (assignment, lag, stall) and /metrics: 0 = off.
HEALTH_PORT = env_int("HEALTH_PORT", 0)
HEALTH_HOST = env_str("HEALTH_HOST", "127.0.0.1")
# Consumer roles' /healthz fails (503) when the consumer loop has not turned for this
# long: a wedged loop is restarted by its liveness probe. Keep it above the longest batch.
HEALTH_LOOP_TIMEOUT_SECONDS = env_float("HEALTH_LOOP_TIMEOUT_SECONDS", 120.0)
# Gateway /readyz: seconds to wait for the bus broker's metadata answer.
READYZ_BUS_TIMEOUT_SECONDS = env_float("READYZ_BUS_TIMEOUT_SECONDS", 2.0)
# Per-message delivery timeline for the admin; off removes every record() call's work.
DELIVERY_TRACE_ENABLED = env_bool("DELIVERY_TRACE_ENABLED", True)
DELIVERY_TRACE_BACKEND = env_str("DELIVERY_TRACE_BACKEND", "redis" if REDIS_URL else "memory")
# Fraction of traces kept (by trace id, so all processes agree); 1.0 = every message.
# Writing every message's events to Redis cost ~15% of the gateway's and the logic's CPU
# under load (docs/benchmarks.md), so production keeps 5% unless told otherwise; the
# in-memory ring of the embedded default costs nothing worth saving and keeps all.
DELIVERY_TRACE_SAMPLE_RATE = env_float(
    "DELIVERY_TRACE_SAMPLE_RATE", 1.0 if DELIVERY_TRACE_BACKEND == "memory" else 0.05
)
# Redis: how long a message's events live, and the most kept per key (huge fan-outs).
DELIVERY_TRACE_TTL_SECONDS = env_int("DELIVERY_TRACE_TTL_SECONDS", 6 * 3600)
DELIVERY_TRACE_MAX_EVENTS_PER_KEY = env_int("DELIVERY_TRACE_MAX_EVENTS_PER_KEY", 500)
# Redis: events waiting for the writer thread (dropped and counted beyond), write interval.
DELIVERY_TRACE_QUEUE_SIZE = env_int("DELIVERY_TRACE_QUEUE_SIZE", 50000)
DELIVERY_TRACE_FLUSH_SECONDS = env_float("DELIVERY_TRACE_FLUSH_SECONDS", 0.25)
# Embedded default: events kept in the in-process ring buffer.
DELIVERY_TRACE_MEMORY_EVENTS = env_int("DELIVERY_TRACE_MEMORY_EVENTS", 20000)

# --- Logging: one JSON line per event -----------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "gochat_site.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
