"""The one JSON shape of a message, shared by REST, WebSocket frames and sync.

Ids are strings: JavaScript cannot hold 64-bit integers.
"""
from __future__ import annotations

from typing import Any

from messaging.models import Message


def loaded_sender_name(message: Message) -> str:
    """The sender's display name if the sender row is already loaded (select_related, or
    set by send_message), else "": never a query."""
    if "sender" in message._state.fields_cache:
        return message.sender.display_name
    return ""


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
    }
