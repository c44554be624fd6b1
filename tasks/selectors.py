"""Reads of the task platform: what the periodic jobs count and archive."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count

from groups.models import Group
from messaging.models import Message


@dataclass(frozen=True)
class MessageCounts:
    messages: int
    active_users: int


def message_counts_between(*, start: datetime, end: datetime) -> MessageCounts:
    row = Message.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        messages=Count("id"), active_users=Count("sender_id", distinct=True)
    )
    return MessageCounts(messages=row["messages"] or 0, active_users=row["active_users"] or 0)


def group_count_before(*, end: datetime) -> int:
    return Group.objects.filter(created_at__lt=end).count()


def conversations_with_messages_before(*, cutoff: datetime) -> list[int]:
    return list(
        Message.objects.filter(created_at__lt=cutoff)
        .order_by("conversation_id")
        .values_list("conversation_id", flat=True)
        .distinct()
    )


def messages_before_batches(*, conversation_id: int, cutoff: datetime, batch_size: int) -> Iterator[list[Message]]:
    """A conversation's messages older than cutoff, in seq order, batch_size at a time
    (keyset paging: memory stays flat however long the history)."""
    after = 0
    while True:
        batch = list(
            Message.objects.filter(conversation_id=conversation_id, created_at__lt=cutoff, seq__gt=after)
            .select_related("sender")
            .order_by("seq")[:batch_size]
        )
        if not batch:
            return
        after = batch[-1].seq
        yield batch
