"""Cache-aside membership check of the gateway's send path.

Only positive answers are cached, and briefly: the gateway check exists to refuse a
non-member early (error 1005 without a trip through the bus); the logic consumer's
send_message checks again under the conversation lock. Removing a group member deletes
the key (messaging/group_sync.py); the logic check covers any other path.
"""
from __future__ import annotations

from messaging import cache
from messaging.selectors import access_membership


def check_member(*, user_id: int, conversation_id: int) -> None:
    """Return if the user is a member; raise NotFound (1003) or NotAMember (1005)."""
    if cache.is_known_member(user_id=user_id, conversation_id=conversation_id):
        return
    access_membership(user_id=user_id, conversation_id=conversation_id)
    cache.remember_member(user_id=user_id, conversation_id=conversation_id)
