"""`python manage.py run_logic`: the logic role. Consumes the upstream topic in the
im-logic-group consumer group until SIGTERM/SIGINT, then finishes its batch and exits.

With HEALTH_PORT set it serves /healthz, /readyz (its assignment, lag and stall state:
503 while stalled or owning nothing while records wait) and /metrics on HEALTH_HOST.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gochat_site import ids
from gochat_site.gc_freeze import freeze_startup_objects
from gochat_site.health import serve_consumer_health
from messaging.consumers_registry import CONSUMERS, ConsumerHealth, run_consumer


class Command(BaseCommand):
    help = "Run the logic consumer: persist and route messages from the upstream topic."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=None, help="records per consume() (default KAFKA_CONSUME_BATCH)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Refuse to start without a unique snowflake worker id (gochat_site/ids.py).
        ids.ensure_worker_id()
        freeze_startup_objects()
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            # Only set a flag: the loop finishes and commits its batch, then exits.
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        if settings.HEALTH_PORT and settings.HEALTH_PORT == settings.METRICS_PORT:
            # Both would bind the port; the health listener serves /metrics as well.
            raise CommandError("HEALTH_PORT and METRICS_PORT are the same port: set METRICS_PORT=0 (HEALTH_PORT serves /metrics too)")
        health = ConsumerHealth("logic")
        server = None
        if settings.HEALTH_PORT:
            server = serve_consumer_health(health, port=settings.HEALTH_PORT, host=settings.HEALTH_HOST)
        self.stdout.write(f"run_logic: consuming {settings.KAFKA_UPSTREAM_TOPIC} as {settings.KAFKA_LOGIC_GROUP}")
        try:
            run_consumer(CONSUMERS["logic"], stop=stop, batch_size=options["batch_size"], health=health)
        finally:
            if server is not None:
                server.shutdown()
        self.stdout.write("run_logic: stopped")
