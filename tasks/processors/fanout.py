"""Processor 'tasks.large_group_fanout': deliver one message to a group too large to
route inline (more than LARGE_GROUP_THRESHOLD members).

Members are read in keyset-ordered batches (FANOUT_BATCH_SIZE, 200 by default), so
memory stays flat at 100k members. Each batch is one presence round trip and one
envelope per gateway (messaging.routing.deliver_to_users, which also hands the offline
members to tasks.offline_push). After a batch is acknowledged by the bus, its last member
id is checkpointed in the cache keyed by the message id; a retry, or a redelivery after a
worker crash (acks_late), resumes after the checkpoint instead of sending the published
batches again. Only the batch in flight at a crash can be sent twice, and gateways drop
a new-message a socket already had.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from messaging import delivery_trace
from messaging.bus import get_producer
from messaging.models import Message
from messaging.routing import deliver_to_users
from messaging.selectors import member_ids_batches
from tasks.registry import processor

logger = logging.getLogger(__name__)

# The checkpoint value once every batch is out: a late redelivery does nothing.
DONE = -1


def checkpoint_key(message_id: int) -> str:
    return f"fanout:{message_id}:cursor"


@processor(
    "tasks.large_group_fanout",
    # A fan-out may be long: resuming from the checkpoint keeps retries cheap.
    soft_time_limit=900,
    time_limit=960,
    max_retries=8,
)
def large_group_fanout(message_id: int, trace_id: str = "") -> dict[str, int]:
    message_id = int(message_id)
    key = checkpoint_key(message_id)
    cursor = int(cache.get(key) or 0)
    if cursor == DONE:
        logger.info("fanout_already_done", extra={"message_id": message_id, "trace_id": trace_id})
        return {"batches": 0, "recipients": 0, "offline": 0}
    # Message.DoesNotExist is permanent: no retry, a FailedTask row.
    message = Message.objects.select_related("sender").get(id=message_id)
    ttl = settings.FANOUT_CHECKPOINT_TTL_SECONDS
    rate = settings.FANOUT_MAX_BATCHES_PER_SECOND
    interval = 1.0 / rate if rate > 0 else 0.0
    producer = get_producer()
    batches = recipients = offline = 0
    started = time.monotonic()
    for user_ids, last_id in member_ids_batches(
        conversation_id=message.conversation_id, batch_size=settings.FANOUT_BATCH_SIZE, after_user_id=cursor
    ):
        if interval:
            # Pace the batches evenly from the start (no burst after a slow batch).
            delay = started + batches * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # The sender's own devices are included: they need the message on their other sockets.
        batch_offline = len(deliver_to_users(message, user_ids, trace_id=trace_id))
        offline += batch_offline
        # Checkpoint only what the broker acknowledged (flush raises otherwise -> retry).
        producer.flush()
        cache.set(key, last_id, ttl)
        batches += 1
        delivery_trace.record(
            "fanout_batch",
            trace_id=trace_id,
            message_id=message_id,
            batch=batches,
            members=len(user_ids),
            offline=batch_offline,
            last_member_id=str(last_id),
        )
        recipients += len(user_ids)
    cache.set(key, DONE, ttl)
    logger.info(
        "fanout_done",
        extra={
            "message_id": message_id,
            "conversation_id": message.conversation_id,
            "resumed_after": cursor,
            "batches": batches,
            "recipients": recipients,
            "offline": offline,
            "trace_id": trace_id,
        },
    )
    return {"batches": batches, "recipients": recipients, "offline": offline}
