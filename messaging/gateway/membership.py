"""Cache-aside membership check of the gateway's send path.

Only positive answers are cached, and briefly: the gateway check exists to refuse a
non-member early (error 1005 without a trip through the bus); the logic consumer's
send_message checks again under the conversation lock, so a member removed within the
TTL is still refused there (SEND_ERROR 1005), never persisted.
"""
from __future__ import annotations

from django.core.cache import cache

from messaging.selectors import access_membership

MEMBERSHIP_TTL_SECONDS = 60


def _key(user_id: int, conversation_id: int) -> str:
    return f"conv:{conversation_id}:member:{user_id}"


def check_member(*, user_id: int, conversation_id: int) -> None:
    """Return if the user is a member; raise NotFound (1003) or NotAMember (1005)."""
    key = _key(user_id, conversation_id)
    if cache.get(key):
        return
    access_membership(user_id=user_id, conversation_id=conversation_id)
    cache.set(key, 1, MEMBERSHIP_TTL_SECONDS)


def forget_member(*, user_id: int, conversation_id: int) -> None:
    cache.delete(_key(user_id, conversation_id))
