"""Celery processor 'tasks.offline_push': notify offline members' devices of a message."""
from __future__ import annotations

import random

from gochat_site import tracing
from messaging import delivery_trace
from tasks.push.services import PushRetryLater, give_up, push_message
from tasks.registry import processor

MAX_RETRIES = 6
BACKOFF_BASE_SECONDS = 2
BACKOFF_MAX_SECONDS = 600


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """Seconds before the next try: the provider's Retry-After when it gave one (never
    less), else exponential backoff with full jitter."""
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**retries))
    if retry_after is not None:
        return max(float(retry_after), 1.0)
    return random.uniform(1.0, float(backoff))


@processor(
    "tasks.offline_push",
    bind=True,
    # A lost push is a missed message for an offline user; devices already served are
    # remembered, so a redelivery does not notify twice. Provider throttling and outages
    # come back as PushRetryLater and are retried below with their Retry-After; anything
    # else unexpected (database, network) is retried by the registry's autoretry.
    acks_late=True,
    retry_backoff=BACKOFF_BASE_SECONDS,
    retry_backoff_max=BACKOFF_MAX_SECONDS,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def offline_push(self, message_id: int, user_ids: list[int]) -> dict[str, int]:
    try:
        report = push_message(message_id=int(message_id), user_ids=[int(u) for u in user_ids])
    except PushRetryLater as exc:
        delivery_trace.record(
            "push_retry",
            trace_id=tracing.current_trace_id(),
            message_id=int(message_id),
            attempt=self.request.retries + 1,
            pending=exc.pending,
            retry_after=exc.retry_after,
        )
        if self.request.retries >= MAX_RETRIES:
            give_up(message_id=int(message_id), pending=exc.pending)
            return {"gave_up": exc.pending}
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries, exc.retry_after))
    delivery_trace.record(
        "push",
        trace_id=tracing.current_trace_id(),
        message_id=int(message_id),
        attempt=self.request.retries + 1,
        users=len(user_ids),
        sent=report.sent,
        failed=report.failed,
        removed=report.removed,
        collapsed=report.collapsed,
    )
    return {"sent": report.sent, "failed": report.failed, "removed": report.removed, "collapsed": report.collapsed}
