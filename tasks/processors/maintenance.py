"""Periodic processors (celery beat, CELERY_BEAT_SCHEDULE): archive old messages, daily
statistics, presence sweep of dead gateways. Each is also a management command."""
from __future__ import annotations

from datetime import date

from tasks import services
from tasks.registry import processor


@processor("tasks.archive_messages", max_retries=3, retry_backoff=1, soft_time_limit=3300, time_limit=3600)
def archive_messages() -> dict[str, int]:
    result = services.archive_messages()
    return {"conversations": result.conversations, "messages": result.messages}


@processor("tasks.daily_stats", max_retries=3)
def daily_stats(day: str = "") -> dict[str, int | str]:
    """Statistics of `day` (ISO date; default yesterday, UTC)."""
    stats = services.compute_daily_stats(day=date.fromisoformat(day) if day else None)
    return {"day": stats.day.isoformat(), "messages": stats.messages, "active_users": stats.active_users}


# A sweep that misses one run is redone by the next one a minute later: no late ack.
@processor("tasks.sweep_presence", max_retries=0, acks_late=False, reject_on_worker_lost=False)
def sweep_presence() -> dict[str, int]:
    return services.sweep_presence()


# Attachments (issue 10). Takes no arguments and is idempotent (a file already gone is no
# error); a failed run is retried, and the next beat run sweeps whatever is left anyway.
@processor("tasks.sweep_attachments", max_retries=3, retry_backoff=30, acks_late=True)
def sweep_attachments() -> dict[str, int]:
    from django.conf import settings

    from messaging.services import sweep_orphan_attachments

    return {"deleted": sweep_orphan_attachments(older_than_seconds=settings.ATTACHMENT_ORPHAN_SECONDS)}
