"""Cache-aside keys of the messaging app: read through the cache, delete on write."""
from __future__ import annotations

from django.core.cache import cache

MUTED_TTL = 300


def _muted_key(conversation_id: int) -> str:
    return f"conv:{conversation_id}:muted"


def muted_user_ids(conversation_id: int) -> set[int]:
    from messaging.models import ConversationMember

    key = _muted_key(conversation_id)
    value = cache.get(key)
    if value is None:
        value = list(
            ConversationMember.objects.filter(conversation_id=conversation_id, muted=True).values_list("user_id", flat=True)
        )
        cache.set(key, value, MUTED_TTL)
    return set(value)


def forget_muted(conversation_id: int) -> None:
    cache.delete(_muted_key(conversation_id))
