"""`manage.py run_task_bridge`: consume the Kafka task topic and start Celery tasks.

With HEALTH_PORT set it serves /healthz (the loop turns), /readyz (assignment, lag,
stall) and /metrics on HEALTH_HOST, as run_logic does.
"""
from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gochat_site import ids
from gochat_site.health import serve_consumer_health
from messaging.bus import ensure_topics
from messaging.consumers_registry import ConsumerHealth, run_consumer
from tasks.bridge import TASK_BRIDGE


class Command(BaseCommand):
    help = "Consume KAFKA_TASK_TOPIC and dispatch each record to its Celery task (dead letters: KAFKA_TASK_DLQ_TOPIC)."

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        # Refuse to start without a unique snowflake worker id (gochat_site/ids.py).
        ids.ensure_worker_id()
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if settings.HEALTH_PORT and settings.HEALTH_PORT == settings.METRICS_PORT:
            raise CommandError("HEALTH_PORT and METRICS_PORT are the same port: set METRICS_PORT=0 (HEALTH_PORT serves /metrics too)")
        health = ConsumerHealth(TASK_BRIDGE.name)
        server = None
        if settings.HEALTH_PORT:
            server = serve_consumer_health(health, port=settings.HEALTH_PORT, host=settings.HEALTH_HOST)
        ensure_topics([settings.KAFKA_TASK_DLQ_TOPIC], 1)
        try:
            run_consumer(TASK_BRIDGE, stop=stop, health=health)
        finally:
            if server is not None:
                server.shutdown()
