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


MEMBERSHIP_TTL_SECONDS = 60


def _member_key(user_id: int, conversation_id: int) -> str:
    return f"conv:{conversation_id}:member:{user_id}"


def is_known_member(*, user_id: int, conversation_id: int) -> bool:
    return bool(cache.get(_member_key(user_id, conversation_id)))


def remember_member(*, user_id: int, conversation_id: int) -> None:
    cache.set(_member_key(user_id, conversation_id), 1, MEMBERSHIP_TTL_SECONDS)


def forget_members(*, conversation_id: int, user_ids: list[int]) -> None:
    cache.delete_many([_member_key(u, conversation_id) for u in user_ids])
