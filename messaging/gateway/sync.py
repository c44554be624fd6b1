"""The data of a sync-result frame, built from the messaging selectors.

With conversation_id: the page of that conversation after after_seq (gap pulls, paging).
Without: catch-up after a reconnect. Every conversation with unread messages
(last_seq > last_read_seq) contributes the messages after the user's last_read_seq, up to
`limit` each, for at most SYNC_MAX_CONVERSATIONS conversations (in conversation id
order); `conversations` tells, per conversation, whether more remains, to be paged with
sync {conversation_id, after_seq}.
"""
from __future__ import annotations

from typing import Any

from messaging.representations import page_message_dicts
from messaging.selectors import conversation_history, unread_counts

SYNC_MAX_CONVERSATIONS = 50


def sync_page(*, user_id: int, conversation_id: int | None, after_seq: int, limit: int | None) -> dict[str, Any]:
    if conversation_id is not None:
        page = conversation_history(user_id=user_id, conversation_id=conversation_id, after_seq=after_seq, limit=limit)
        return {
            "conversation_id": str(conversation_id),
            "messages": page_message_dicts(page.messages, page.read_counts),
            "has_more": page.has_more,
            # Hidden by this user (delete-for-me): known seqs, not a gap.
            "hidden_seqs": page.hidden_seqs,
        }
    unread = sorted(unread_counts(user_id=user_id), key=lambda row: row["conversation_id"])
    messages: list[dict[str, Any]] = []
    conversations: list[dict[str, Any]] = []
    for index, row in enumerate(unread):
        entry = {
            "conversation_id": str(row["conversation_id"]),
            "last_read_seq": row["last_read_seq"],
            "last_seq": row["last_seq"],
            "unread": row["unread"],
            "has_more": True,
            "hidden_seqs": [],
        }
        if index < SYNC_MAX_CONVERSATIONS:
            page = conversation_history(
                user_id=user_id, conversation_id=row["conversation_id"], after_seq=row["last_read_seq"], limit=limit
            )
            messages.extend(page_message_dicts(page.messages, page.read_counts))
            entry["has_more"] = page.has_more
            entry["hidden_seqs"] = page.hidden_seqs
        conversations.append(entry)
    return {
        "messages": messages,
        "has_more": any(entry["has_more"] for entry in conversations),
        "conversations": conversations,
    }
