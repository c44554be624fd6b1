"""The Celery application of the im-task role.

Configuration comes from Django settings (CELERY_* names): broker (Redis or RabbitMQ),
JSON only, routes by task name, time limits, the beat schedule. The four queues are
declared here; retry policy and acks_late are per task (tasks.registry). docs/tasks.md
explains the whole set-up.
"""
from __future__ import annotations

import os

from celery import Celery, signals
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")

QUEUES = ("fanout", "push", "index", "default")

app = Celery("gochat_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUES)
# The tasks app loads every processor module in its AppConfig.ready(); this finds any
# other app's tasks.py.
app.autodiscover_tasks()

# Trace ids ride in task headers; every task run is counted and timed (docs/observability.md).
from gochat_site import metrics, tracing  # noqa: E402

tracing.connect_celery_signals()
metrics.connect_celery_signals()


@signals.worker_process_init.connect
def _claim_snowflake_worker_id(**_: object) -> None:
    # Each prefork child leases its own worker id at start (gochat_site/ids.py), not at
    # its first write; a child never issues under its parent's id.
    from gochat_site import ids

    ids.ensure_worker_id()
