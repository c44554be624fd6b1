"""The one JSON shape of a message, shared by REST, WebSocket frames and sync.

Ids are strings: JavaScript cannot hold 64-bit integers.
"""
from __future__ import annotations

from typing import Any

from messaging import attachments
from messaging.models import Message


def loaded_sender_name(message: Message) -> str:
    """The sender's display name if the sender row is already loaded (select_related, or
    set by send_message), else "": never a query."""
    if "sender" in message._state.fields_cache:
        return message.sender.display_name
    return ""


def loaded_attachment(message: Message) -> dict[str, Any] | None:
    """The message's attachment with freshly signed URLs if it was loaded (selectors.
    with_attachments, or set by send_messages), else None: never a query. A recalled
    message shows none."""
    rel = Message.attachment.related
    if message.status != Message.Status.NORMAL or not rel.is_cached(message):
        return None
    attachment = rel.get_cached_value(message)
    return attachments.model_dict(attachment) if attachment is not None else None


def message_dict(message: Message) -> dict[str, Any]:
    sender_name = loaded_sender_name(message)
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "seq": message.seq,
        "sender_id": str(message.sender_id),
        "sender_name": sender_name,
        "client_msg_id": message.client_msg_id,
        "message_type": message.message_type,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "status": message.status,
        # Lifecycle (issue 10): a recalled message has content "" (the row holds no text).
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        # Set by selectors.attach_reactions on history/sync pages; a new message has none.
        "reactions": list(getattr(message, "reaction_counts", ())),
        "reply_to": loaded_reply_preview(message),
        "mentions": [str(u) for u in message.mentions or ()],
        "attachment": loaded_attachment(message),
    }


def page_message_dicts(messages: list[Message], read_counts: dict[int, int] | None) -> list[dict[str, Any]]:
    """History/sync messages: message_dict, plus "read_count" for group messages
    (selectors.read_counts_for; None for single chats, which carry peer_last_read_seq)."""
    rendered = [message_dict(m) for m in messages]
    if read_counts is not None:
        for data, message in zip(rendered, messages):
            data["read_count"] = read_counts.get(message.id, 0)
    return rendered


REPLY_PREVIEW_LENGTH = 100


def reply_preview(target: Message) -> dict[str, Any]:
    """A quoted message as replies show it (ids as strings); no content once recalled."""
    recalled = target.status == Message.Status.RECALLED
    return {
        "id": str(target.id),
        "seq": target.seq,
        "sender_id": str(target.sender_id),
        "sender_name": loaded_sender_name(target),
        "content": "" if recalled else target.content[:REPLY_PREVIEW_LENGTH],
        "message_type": target.message_type,
        "status": target.status,
    }


def loaded_reply_preview(message: Message) -> dict[str, Any] | None:
    """The preview of the quoted message if it is loaded (select_related in history, set
    by the writer on send), else None: never a query. None too once it is archived."""
    if message.reply_to_id is None or "reply_to" not in message._state.fields_cache:
        return None
    target = message.reply_to
    return reply_preview(target) if target is not None else None
