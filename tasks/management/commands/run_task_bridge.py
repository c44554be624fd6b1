"""`manage.py run_task_bridge`: consume the Kafka task topic and start Celery tasks."""
from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging.bus import ensure_topics
from messaging.consumers_registry import run_consumer
from tasks.bridge import TASK_BRIDGE


class Command(BaseCommand):
    help = "Consume KAFKA_TASK_TOPIC and dispatch each record to its Celery task (dead letters: KAFKA_TASK_DLQ_TOPIC)."

    def handle(self, *args, **options) -> None:  # noqa: ANN002, ANN003
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        ensure_topics([settings.KAFKA_TASK_DLQ_TOPIC], 1)
        run_consumer(TASK_BRIDGE, stop=stop)
