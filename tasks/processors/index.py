"""Celery processor 'tasks.index_message': make one persisted message searchable."""
from __future__ import annotations

from django.db import DatabaseError

from tasks.registry import processor
from tasks.search.services import index_message as do_index_message


@processor(
    "tasks.index_message",
    # Idempotent, so a redelivery after a worker crash is harmless and no index entry
    # is lost with the worker.
    acks_late=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def index_message(message_id: int) -> bool:
    return do_index_message(message_id=int(message_id))
