"""Writes of message search: keeping the index in step with messaging_message."""
from __future__ import annotations

import logging
from collections.abc import Iterator

from messaging.models import Message
from tasks.search import get_backend

logger = logging.getLogger(__name__)


def index_message(*, message_id: int) -> bool:
    """Index one message, or drop it from the index when it is gone or recalled.

    Idempotent: running it twice leaves one entry. Returns whether the message is now
    searchable."""
    backend = get_backend()
    message = Message.objects.filter(id=message_id).first()
    if message is None or message.status != Message.Status.NORMAL:
        backend.remove(message_id)
        logger.info("message_unindexed", extra={"message_id": message_id})
        return False
    backend.index(message)
    logger.info("message_indexed", extra={"message_id": message_id, "conversation_id": message.conversation_id})
    return True


def reindex_all(*, batch_size: int = 500) -> Iterator[int]:
    """Re-index every message in id order; yields the number done after each batch."""
    backend = get_backend()
    cursor = 0
    while True:
        batch = list(Message.objects.filter(id__gt=cursor).order_by("id")[:batch_size])
        if not batch:
            return
        for message in batch:
            if message.status == Message.Status.NORMAL:
                backend.index(message)
            else:
                backend.remove(message.id)
        cursor = batch[-1].id
        yield len(batch)
