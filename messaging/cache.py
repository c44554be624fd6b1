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


def forget_members(*, conversation_id: int, user_ids: list[int] | None) -> None:
    """Members left a conversation (None: any of them may have): once the change commits,
    every gateway drops its cached "is a member" answers (messaging/gateway/membership.py)."""
    from django.db import transaction

    from messaging.gateway import membership

    ids = None if user_ids is None else list(user_ids)
    transaction.on_commit(lambda: membership.invalidate(conversation_id=conversation_id, user_ids=ids))


def forget_member_list(*, conversation_id: int) -> None:
    """Members joined a conversation: once committed, every gateway drops its cached
    member list of it (typing recipients); no "is a member" answer is dropped (user_ids
    empty), since only positive answers are cached."""
    from django.db import transaction

    from messaging.gateway import membership

    transaction.on_commit(lambda: membership.invalidate(conversation_id=conversation_id, user_ids=[]))
