"""The Celery application of the im-task role (queues, routes, policies: tasks/ docs)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gochat_site.settings")

app = Celery("gochat_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
