"""Prometheus metrics of every GoChat role, defined once here, and the /metrics view.

One process (daphne gateway, run_logic, the task bridge): the default in-process
registry. Several processes on one host that share a scrape target (Celery's prefork
pool): set the environment variable PROMETHEUS_MULTIPROC_DIR to an empty directory that
all of them can write; prometheus-client then keeps every value in per-process files and
the view (or start_metrics_server) sums them. docs/observability.md lists every metric.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

logger = logging.getLogger(__name__)

# --- gateway ------------------------------------------------------------------------------
# livesum: in multiprocess mode a dead process's sockets drop out of the sum.
WS_CONNECTIONS = Gauge(
    "gochat_ws_connections", "Open WebSocket connections", ["gateway"], multiprocess_mode="livesum"
)
WS_FRAMES_IN = Counter("gochat_ws_frames_in_total", "Client frames received, by type", ["type"])
WS_FRAMES_OUT = Counter("gochat_ws_frames_out_total", "Server frames written to sockets, by type", ["type"])
MESSAGES_ACCEPTED = Counter(
    "gochat_messages_accepted_total", "send-message frames validated and produced upstream by a gateway"
)
MESSAGES_DELIVERED = Counter(
    "gochat_messages_delivered_total", "new-message frames written to recipient sockets by a gateway"
)
# Seconds from the gateway receiving send-message (received_at_ms of the envelopes) to a
# frame of that message leaving a gateway: kind=ack for the sender, new_message for recipients.
DELIVERY_LATENCY = Histogram(
    "gochat_message_delivery_latency_seconds",
    "Gateway receive -> frame written to a socket",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# --- logic --------------------------------------------------------------------------------
MESSAGES_PERSISTED = Counter(
    "gochat_messages_persisted_total",
    "Upstream messages the logic consumer stored (duplicate=true: an earlier copy was returned)",
    ["duplicate"],
)
MESSAGES_REFUSED = Counter("gochat_messages_refused_total", "Upstream messages refused, by error code", ["code"])
# Seconds a record waited between the gateway and the logic (received_at_ms to persisted):
# the queueing in front of the logic, once a log line per message, now a histogram.
GATEWAY_TO_LOGIC_SECONDS = Histogram(
    "gochat_gateway_to_logic_seconds",
    "Gateway receive -> persisted by the logic consumer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONSUMER_LAG = Gauge(
    "gochat_kafka_consumer_lag",
    "Records not yet committed by a consumer group (high watermark - committed offset), "
    "over the partitions this process owns",
    ["consumer", "group"],
    multiprocess_mode="livesum",
)
CONSUMER_ASSIGNED = Gauge(
    "gochat_kafka_consumer_assigned_partitions",
    "Partitions a consumer loop owns at its last stall check",
    ["consumer", "group"],
    multiprocess_mode="livesum",
)
# Alert on any increase: the loop re-created its consumer because the group stopped moving.
CONSUMER_STALLS = Counter(
    "gochat_kafka_consumer_stalls_total",
    "Consumer re-creations after a stall (reason: no_progress, unassigned, orphaned_partition)",
    ["consumer", "group", "reason"],
)

# --- tasks --------------------------------------------------------------------------------
CELERY_TASKS = Counter("gochat_celery_tasks_total", "Celery task runs that ended, by task and state", ["task", "state"])
CELERY_TASK_DURATION = Histogram(
    "gochat_celery_task_duration_seconds",
    "Celery task run time (one attempt)",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
PUSH_SENT = Counter("gochat_push_sent_total", "Push notifications accepted by APNs/FCM")
PUSH_FAILED = Counter("gochat_push_failed_total", "Push notifications that failed for good")

# Outcome of each device a push job tried: sent, invalid_token (device removed), retry,
# failed, collapsed (inside the collapse window: no notification needed).
PUSH_OUTCOMES = Counter(
    "gochat_push_outcomes_total", "Push attempts per device, by platform and outcome", ["platform", "outcome"]
)

# Records a consumer could not handle and produced to a dead-letter topic instead
# (upstream: undecodable; task bridge: unknown task, bad kwargs, ...). Alert on any.
DEAD_LETTERS = Counter(
    "gochat_dead_letters_total", "Records produced to a dead-letter topic, by topic and reason", ["topic", "reason"]
)

# --- infrastructure errors ------------------------------------------------------------------
# Every database error Django raises (connect, execute, commit), by Django's class name:
# IntegrityError is also how dedupe races end, so alert on OperationalError/InterfaceError.
DB_ERRORS = Counter("gochat_db_errors_total", "Database errors raised to GoChat code", ["vendor", "error"])
# Every failed Redis command or connect of GoChat's own clients (cache, presence, rate
# limit, delivery trace), by component and redis-py exception class.
REDIS_ERRORS = Counter("gochat_redis_errors_total", "Redis errors seen by GoChat's clients", ["component", "error"])
# Wall-clock time of this gateway's last successful presence heartbeat (alert: too old).
GATEWAY_HEARTBEAT = Gauge(
    "gochat_gateway_heartbeat_timestamp_seconds",
    "Unix time of the gateway's last successful presence heartbeat",
    ["gateway"],
    multiprocess_mode="max",
)

# --- the delivery trace itself --------------------------------------------------------------
TRACE_EVENTS_DROPPED = Counter(
    "gochat_delivery_trace_dropped_total", "Delivery-trace events dropped (recorder queue full or store down)"
)


def count_dead_letter(*, topic: str, reason: str) -> None:
    DEAD_LETTERS.labels(topic=topic, reason=reason).inc()


def count_db_error(*, vendor: str, error: str) -> None:
    DB_ERRORS.labels(vendor=vendor, error=error).inc()


def count_redis_error(*, component: str, error: str) -> None:
    REDIS_ERRORS.labels(component=component, error=error).inc()


def set_consumer_assignment(*, consumer: str, group: str, partitions: int) -> None:
    CONSUMER_ASSIGNED.labels(consumer=consumer, group=group).set(partitions)


def count_consumer_stall(*, consumer: str, group: str, reason: str) -> None:
    CONSUMER_STALLS.labels(consumer=consumer, group=group, reason=reason).inc()


def set_consumer_lag(*, consumer: str, group: str, lag: Mapping[tuple[str, int], int]) -> None:
    """Publish the lag a consumer sampled (per owned partition) as one number per group."""
    CONSUMER_LAG.labels(consumer=consumer, group=group).set(sum(max(0, v) for v in lag.values()))


# --- Celery: task counts and durations ------------------------------------------------------
_task_started: dict[str, float] = {}
_task_started_lock = threading.Lock()


def _on_task_prerun(sender=None, task_id: str | None = None, **_: object) -> None:  # noqa: ANN001 - signal
    with _task_started_lock:
        _task_started[task_id or ""] = time.perf_counter()


def _on_task_postrun(sender=None, task_id: str | None = None, state: str | None = None, **_: object) -> None:  # noqa: ANN001
    with _task_started_lock:
        started = _task_started.pop(task_id or "", None)
    name = getattr(sender, "name", "") or "unknown"
    CELERY_TASKS.labels(task=name, state=state or "UNKNOWN").inc()
    if started is not None:
        CELERY_TASK_DURATION.labels(task=name).observe(time.perf_counter() - started)


def connect_celery_signals() -> None:
    """Count and time every task this process runs (worker, or eager in the embedded default)."""
    from celery.signals import task_postrun, task_prerun, worker_process_shutdown, worker_ready

    task_prerun.connect(_on_task_prerun, dispatch_uid="gochat.metrics.task_prerun", weak=False)
    task_postrun.connect(_on_task_postrun, dispatch_uid="gochat.metrics.task_postrun", weak=False)
    worker_process_shutdown.connect(_mark_dead, dispatch_uid="gochat.metrics.process_dead", weak=False)
    # The worker's main process serves METRICS_PORT (with PROMETHEUS_MULTIPROC_DIR it sums
    # the pool children, which do the work).
    worker_ready.connect(_serve, dispatch_uid="gochat.metrics.worker_ready", weak=False)


def _serve(**_: object) -> None:
    # Only a worker samples its broker's queues: one round trip per queue per scrape.
    register_extra_collector(CeleryQueueCollector())
    start_metrics_server()


class CeleryQueueCollector:
    """gochat_celery_queue_length{queue}: messages waiting in each Celery queue, read from
    the broker at scrape time (a passive queue_declare, which kombu answers for Redis and
    RabbitMQ alike). Every worker reports the same numbers: aggregate with max()."""

    def __init__(self, queues: tuple[str, ...] | None = None, app: object | None = None) -> None:
        self.queues = queues
        self.app = app

    def collect(self):  # noqa: ANN201 - prometheus_client collector protocol
        from prometheus_client.core import GaugeMetricFamily

        from gochat_site.celery import QUEUES
        from gochat_site.celery import app as default_app

        app = self.app or default_app

        family = GaugeMetricFamily(
            "gochat_celery_queue_length", "Messages waiting in a Celery queue (broker view)", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "gochat_celery_queue_scrape_failed", "1 when the broker could not be asked for queue lengths"
        )
        try:
            # Bounded: a broker that does not answer costs a scrape 2 s, not its timeout.
            with app.connection_for_read(connect_timeout=2) as conn:  # type: ignore[attr-defined]
                conn.ensure_connection(max_retries=1)
                channel = conn.default_channel
                for queue in self.queues or QUEUES:
                    try:
                        count = channel.queue_declare(queue=queue, passive=True).message_count
                    except Exception:  # noqa: BLE001 - AMQP: a queue not declared yet is empty
                        count = 0
                        channel = conn.channel()
                    family.add_metric([queue], count)
            failed.add_metric([], 0)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the broker does
            logger.warning("celery_queue_length_failed", exc_info=True)
            failed.add_metric([], 1)
        yield family
        yield failed


_extra_collectors: list[object] = []


def register_extra_collector(collector: object) -> None:
    """A collector that computes its values at scrape time; exposed by registry()."""
    if any(type(c) is type(collector) for c in _extra_collectors):
        return
    _extra_collectors.append(collector)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        REGISTRY.register(collector)  # type: ignore[arg-type]


def _mark_dead(pid: int | None = None, **_: object) -> None:
    # A prefork child that exits must leave the livesum gauges, or its sockets/lag stay counted.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


# --- exposition -----------------------------------------------------------------------------
def registry() -> CollectorRegistry:
    """The registry to expose: the multiprocess aggregate when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        for collector in _extra_collectors:
            collected.register(collector)  # type: ignore[arg-type]
        return collected
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics in the Prometheus text format."""
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


_server_started = False


def start_metrics_server(port: int | None = None, addr: str = "0.0.0.0") -> object | None:
    """Serve /metrics on settings.METRICS_PORT from a process without HTTP (run_logic, the
    task bridge, the Celery worker's main process); 0 leaves it off. Once per process.
    Returns prometheus_client's server (server_address holds the bound port), or None."""
    global _server_started
    from django.conf import settings

    port = settings.METRICS_PORT if port is None else port
    if not port or _server_started:
        return None
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=registry())
    _server_started = True
    logger.info("metrics_server_started", extra={"port": server.server_address[1]})
    return server
