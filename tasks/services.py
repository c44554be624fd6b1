"""Writes of the task platform: dead letters, re-sending them, push counters, daily
statistics, message archiving and the presence sweep. The periodic processors and
management commands are thin adapters over these functions."""
from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from gochat_site.errors import InvalidParams
from tasks import selectors
from tasks.models import DailyStats, FailedTask
from tasks.push import stats as push_stats

logger = logging.getLogger(__name__)

# Push counters live this long in the cache: past the daily_stats run of the next day.


def _json_safe(value: Any) -> Any:
    # Eager tasks may carry values JSON does not know; the broker would have refused them.
    return json.loads(json.dumps(value, default=str))


def record_failed_task(
    *,
    name: str,
    task_id: str,
    args: list[Any],
    kwargs: dict[str, Any],
    error: str,
    traceback: str = "",
    attempts: int = 1,
) -> FailedTask:
    """Keep a task that ended in failure, so an operator can see and re-send it."""
    failed = FailedTask.objects.create(
        name=name,
        task_id=task_id,
        args=_json_safe(args),
        kwargs=_json_safe(kwargs),
        error=error[:10000],
        traceback=traceback,
        attempts=attempts,
    )
    logger.error("task_failed", extra={"task": name, "task_id": task_id, "attempts": attempts, "error": error[:500]})
    return failed


def retry_failed_tasks(*, ids: list[int]) -> int:
    """Send each given failed task again with its arguments; return how many were sent."""
    from gochat_site.celery import app

    sent = 0
    for failed in FailedTask.objects.filter(id__in=ids).order_by("id"):
        task = app.tasks.get(failed.name)
        if task is not None:
            # apply_async, not send_task: it honours eager mode in the embedded default.
            task.apply_async(args=failed.args, kwargs=failed.kwargs)
        else:
            app.send_task(failed.name, args=failed.args, kwargs=failed.kwargs)
        FailedTask.objects.filter(id=failed.id).update(retried_at=timezone.now())
        sent += 1
        logger.info("failed_task_resent", extra={"task": failed.name, "failed_task_id": failed.id})
    return sent


def compute_daily_stats(*, day: date | None = None) -> DailyStats:
    """Write the statistics of one UTC day (default: yesterday); running it again updates."""
    day = day or (timezone.now() - timedelta(days=1)).date()
    start = datetime.combine(day, time.min, tzinfo=dt_timezone.utc)
    end = start + timedelta(days=1)
    counts = selectors.message_counts_between(start=start, end=end)
    push_sent, push_failed = push_stats.push_counts(day)
    stats, _ = DailyStats.objects.update_or_create(
        day=day,
        defaults={
            "messages": counts.messages,
            "active_users": counts.active_users,
            "groups": selectors.group_count_before(end=end),
            "push_sent": push_sent,
            "push_failed": push_failed,
        },
    )
    logger.info("daily_stats_computed", extra={"day": day.isoformat(), "messages": stats.messages})
    return stats


@dataclass
class ArchiveResult:
    cutoff: datetime | None = None
    conversations: int = 0
    messages: int = 0
    files: list[str] = field(default_factory=list)


def archive_messages(
    *, retention_days: int | None = None, archive_dir: str | None = None, batch_size: int | None = None
) -> ArchiveResult:
    """Move messages older than the retention period into gzip JSON Lines files, one
    file per conversation and run, then delete them from the database in batches.

    A file is complete on disk (fsync, atomic rename) before its messages are deleted,
    so a crash in between leaves the messages in place and the next run archives them
    again: at worst a message is in two files (same id and seq), never in none.
    """
    from messaging.representations import message_dict
    from messaging.services import delete_messages_before

    days = settings.MESSAGE_RETENTION_DAYS if retention_days is None else retention_days
    if days < 0:
        raise InvalidParams("retention_days must be >= 0")
    result = ArchiveResult()
    if days == 0:
        return result  # retention off: keep everything
    size = batch_size or settings.ARCHIVE_BATCH_SIZE
    root = Path(archive_dir or settings.ARCHIVE_DIR)
    cutoff = timezone.now() - timedelta(days=days)
    result.cutoff = cutoff
    for conversation_id in selectors.conversations_with_messages_before(cutoff=cutoff):
        directory = root / f"conversation-{conversation_id}"
        directory.mkdir(parents=True, exist_ok=True)
        written = 0
        last_seq = 0
        first_seq = None
        handle, temp_path = tempfile.mkstemp(dir=directory, prefix=".archive-", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
                for batch in selectors.messages_before_batches(
                    conversation_id=conversation_id, cutoff=cutoff, batch_size=size
                ):
                    for message in batch:
                        out.write(json.dumps(message_dict(message), ensure_ascii=False).encode() + b"\n")
                    first_seq = batch[0].seq if first_seq is None else first_seq
                    last_seq = batch[-1].seq
                    written += len(batch)
                out.close()
                raw.flush()
                os.fsync(raw.fileno())
            if not written:
                os.unlink(temp_path)
                continue
            stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
            final = directory / f"{stamp}-seq{first_seq}-{last_seq}.jsonl.gz"
            os.replace(temp_path, final)
        except BaseException:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
            raise
        deleted = delete_messages_before(
            conversation_id=conversation_id, max_seq=last_seq, before=cutoff, batch_size=size
        )
        result.conversations += 1
        result.messages += deleted
        result.files.append(str(final))
        logger.info(
            "messages_archived",
            extra={"conversation_id": conversation_id, "messages": deleted, "file": str(final)},
        )
    return result


def sweep_presence() -> dict[str, int]:
    """Remove the presence entries of gateways whose liveness lapsed; gateway -> count."""
    from messaging.presence import get_presence

    presence = get_presence()
    swept: dict[str, int] = {}
    for gateway_id in presence.dead_gateways():
        swept[gateway_id] = presence.sweep_gateway(gateway_id)
        logger.info("presence_gateway_swept", extra={"gateway_id": gateway_id, "entries": swept[gateway_id]})
    return swept
