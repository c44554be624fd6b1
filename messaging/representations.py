"""The one JSON shape of a message, shared by REST, WebSocket frames and sync.

Ids are strings: JavaScript cannot hold 64-bit integers.
"""
from __future__ import annotations

from typing import Any

from messaging.models import Message


def message_dict(message: Message) -> dict[str, Any]:
    sender_name = ""
    if "sender" in message._state.fields_cache:  # loaded by select_related: no extra query
        sender_name = message.sender.display_name
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
