"""Processors of the large-group fan-out: deliver one message to a group too large to
route inline (more than LARGE_GROUP_THRESHOLD members), as many short tasks.

- `tasks.large_group_fanout(message_id)` plans: it pages member ids by keyset
  (FANOUT_BATCH_SIZE, 200 by default) and sends one `tasks.fanout_batch` per page,
  then one `tasks.fanout_sweep`. It only reads ids and publishes, so it runs for
  milliseconds to a few seconds even at 100k members.
- `tasks.fanout_batch(message_id, after_user_id, last_user_id)` delivers the members in
  (after, last]: one presence round trip and one envelope per gateway
  (messaging.routing.deliver_to_users, which also hands offline members to push).
- `tasks.fanout_sweep(message_id)` waits until every planned batch is done and runs
  itself any batch whose worker died (its lease, the batch's hard time limit, ran out).

Why: with acks_late on the Redis broker, a task whose worker was SIGKILLed comes back
only after CELERY_VISIBILITY_TIMEOUT (3600 s). As one long task, a fan-out killed midway
stranded all its remaining members for that long; now only the batch in flight is
stranded, and the sweep re-runs it within BATCH_TIME_LIMIT seconds (docs/tasks.md has
the measurement). Every step is idempotent through cache checkpoints keyed by the
message id: the planner's cursor and plan, a done mark per batch, a lease per batch, so a
retry or a late redelivery re-sends nothing that the bus already acknowledged; only a
batch in flight at a crash can be sent twice, and gateways drop a new-message a socket
already had.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

from messaging import delivery_trace
from messaging.bus import get_producer
from messaging.models import Message
from messaging.routing import deliver_to_users
from messaging.selectors import member_ids_batches
from tasks.registry import processor

logger = logging.getLogger(__name__)

# The planner cursor once every batch is planned: a late redelivery plans nothing.
DONE = -1
# A batch is one presence round trip and one produce per gateway: seconds at most.
BATCH_SOFT_TIME_LIMIT = 15
BATCH_TIME_LIMIT = 20
# A batch started longer ago than its hard time limit, and not done, has lost its worker.
BATCH_LEASE_SECONDS = BATCH_TIME_LIMIT
# One sweep waits this long for the batches, then hands over to a new sweep at the back
# of the queue (so a long backlog of batches never hits the sweep's own time limit).
SWEEP_ROUND_SECONDS = 90
SWEEP_MAX_ROUNDS = 40


def checkpoint_key(message_id: int) -> str:
    """The planner's cursor: the last member id handed to a batch task (DONE at the end)."""
    return f"fanout:{message_id}:cursor"


def plan_key(message_id: int) -> str:
    return f"fanout:{message_id}:plan"


def batch_done_key(message_id: int, after_user_id: int) -> str:
    return f"fanout:{message_id}:batch:{after_user_id}:done"


def batch_lease_key(message_id: int, after_user_id: int) -> str:
    return f"fanout:{message_id}:batch:{after_user_id}:lease"


def delivered_key(message_id: int) -> str:
    """Set by the sweep once every batch of the fan-out is done."""
    return f"fanout:{message_id}:delivered"


@processor(
    "tasks.large_group_fanout",
    soft_time_limit=120,
    time_limit=150,
    max_retries=8,
)
def large_group_fanout(message_id: int, trace_id: str = "") -> dict[str, int]:
    message_id = int(message_id)
    key = checkpoint_key(message_id)
    cursor = int(cache.get(key) or 0)
    if cursor == DONE:
        logger.info("fanout_already_planned", extra={"message_id": message_id, "trace_id": trace_id})
        return {"batches": 0, "recipients": 0}
    # Message.DoesNotExist is permanent: no retry, a FailedTask row.
    message = Message.objects.only("id", "conversation_id").get(id=message_id)
    ttl = settings.FANOUT_CHECKPOINT_TTL_SECONDS
    rate = settings.FANOUT_MAX_BATCHES_PER_SECOND
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.time()
    plan: list[list[int]] = list(cache.get(plan_key(message_id)) or [])
    batches = recipients = 0
    for user_ids, last_id in member_ids_batches(
        conversation_id=message.conversation_id, batch_size=settings.FANOUT_BATCH_SIZE, after_user_id=cursor
    ):
        # Pacing is each batch's start time, not a sleep here: the planner stays short,
        # and the batches not yet run wait in the queue, not in a dying worker.
        not_before = started + batches * interval if interval else 0.0
        fanout_batch.apply_async(
            kwargs={
                "message_id": message_id,
                "after_user_id": cursor,
                "last_user_id": last_id,
                "trace_id": trace_id,
                "not_before": not_before,
            }
        )
        plan.append([cursor, last_id])
        cursor = last_id
        # A redelivered or retried planner resumes here instead of sending the planned
        # batches again. The plan is saved with the cursor, in one write (MULTI on Redis):
        # a planner that fails between two pages (the database went away) and is retried
        # must still hand the sweep the batches it sent before the failure, or a lost one
        # among them would never be re-run.
        cache.set_many({key: cursor, plan_key(message_id): plan}, ttl)
        batches += 1
        recipients += len(user_ids)
    cache.set(key, DONE, ttl)
    logger.info(
        "fanout_planned",
        extra={
            "message_id": message_id,
            "conversation_id": message.conversation_id,
            "batches": batches,
            "recipients": recipients,
            "trace_id": trace_id,
        },
    )
    fanout_sweep.apply_async(kwargs={"message_id": message_id, "trace_id": trace_id})
    return {"batches": batches, "recipients": recipients}


def deliver_batch(
    *, message_id: int, after_user_id: int, last_user_id: int, trace_id: str = "", not_before: float = 0.0
) -> dict[str, Any]:
    """Deliver the members in (after_user_id, last_user_id] unless already done."""
    done = batch_done_key(message_id, after_user_id)
    if cache.get(done):
        return {"skipped": True, "recipients": 0, "offline": 0}
    ttl = settings.FANOUT_CHECKPOINT_TTL_SECONDS
    cache.set(batch_lease_key(message_id, after_user_id), time.time(), ttl)
    delay = min(not_before - time.time(), BATCH_SOFT_TIME_LIMIT - 5)
    if delay > 0:
        time.sleep(delay)
    message = Message.objects.select_related("sender", "reply_to__sender").get(id=message_id)
    user_ids: list[int] = []
    # Members who joined inside the range since the plan are included; the page size
    # only bounds each query.
    for ids, last in member_ids_batches(
        conversation_id=message.conversation_id, batch_size=settings.FANOUT_BATCH_SIZE, after_user_id=after_user_id
    ):
        user_ids.extend(i for i in ids if i <= last_user_id)
        if last >= last_user_id:
            break
    # The sender's own devices are included: they need the message on their other sockets.
    offline = len(deliver_to_users(message, user_ids, trace_id=trace_id))
    # Done only once the broker acknowledged the envelopes (flush raises otherwise -> retry).
    get_producer().flush()
    cache.set(done, 1, ttl)
    delivery_trace.record(
        "fanout_batch",
        trace_id=trace_id,
        message_id=message_id,
        members=len(user_ids),
        offline=offline,
        last_member_id=str(last_user_id),
    )
    return {"skipped": False, "recipients": len(user_ids), "offline": offline}


@processor(
    "tasks.fanout_batch",
    soft_time_limit=BATCH_SOFT_TIME_LIMIT,
    time_limit=BATCH_TIME_LIMIT,
    max_retries=8,
)
def fanout_batch(
    message_id: int, after_user_id: int, last_user_id: int, trace_id: str = "", not_before: float = 0.0
) -> dict[str, Any]:
    return deliver_batch(
        message_id=int(message_id),
        after_user_id=int(after_user_id),
        last_user_id=int(last_user_id),
        trace_id=trace_id,
        not_before=float(not_before),
    )


@processor(
    "tasks.fanout_sweep",
    soft_time_limit=SWEEP_ROUND_SECONDS + 20,
    time_limit=SWEEP_ROUND_SECONDS + 40,
    max_retries=8,
)
def fanout_sweep(message_id: int, trace_id: str = "", round: int = 1) -> dict[str, int]:  # noqa: A002 - a task kwarg
    message_id = int(message_id)
    plan = cache.get(plan_key(message_id)) or []
    rerun = 0
    round_ends = time.monotonic() + SWEEP_ROUND_SECONDS
    # A batch not started yet may sit reserved in a worker that died: it has no lease,
    # so it counts as lost once it has been missing for a lease's time.
    missing_since: dict[int, float] = {}
    while True:
        missing = [(after, last) for after, last in plan if not cache.get(batch_done_key(message_id, after))]
        if not missing:
            break
        now = time.time()
        for after, last in missing:
            lease = cache.get(batch_lease_key(message_id, after))
            first_seen = missing_since.setdefault(after, now)
            started = float(lease) if lease is not None else first_seen
            if now - started >= BATCH_LEASE_SECONDS:
                logger.warning(
                    "fanout_batch_rerun",
                    extra={"message_id": message_id, "after_user_id": after, "lease": lease, "trace_id": trace_id},
                )
                deliver_batch(message_id=message_id, after_user_id=after, last_user_id=last, trace_id=trace_id)
                rerun += 1
        if time.monotonic() >= round_ends:
            if round < SWEEP_MAX_ROUNDS:
                fanout_sweep.apply_async(kwargs={"message_id": message_id, "trace_id": trace_id, "round": round + 1})
            else:
                logger.error("fanout_sweep_gave_up", extra={"message_id": message_id, "missing": len(missing)})
            return {"batches": len(plan), "rerun": rerun, "done": 0}
        time.sleep(0.5)
    cache.set(delivered_key(message_id), 1, settings.FANOUT_CHECKPOINT_TTL_SECONDS)
    logger.info(
        "fanout_done",
        extra={"message_id": message_id, "batches": len(plan), "rerun": rerun, "trace_id": trace_id},
    )
    return {"batches": len(plan), "rerun": rerun, "done": 1}
