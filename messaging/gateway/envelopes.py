"""Conversions between Message rows, the protobuf ChatMessage of the Kafka envelopes and
the client JSON shape of a message (the same keys as messaging.representations)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from messaging.models import Message
from protos.gochat.v1 import envelopes_pb2 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def chat_message_from_model(message: Message, *, sender_name: str = "") -> pb.ChatMessage:
    return pb.ChatMessage(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        client_msg_id=message.client_msg_id,
        message_type=message.message_type,
        content=message.content,
        created_at_ms=_to_ms(message.created_at),
        status=message.status,
        sender_name=sender_name,
    )


def message_dict_from_pb(message: pb.ChatMessage) -> dict[str, Any]:
    """The client shape of a message carried in an envelope.

    created_at has millisecond precision here (the envelope carries ms), while REST and
    sync render the row's microseconds; clients order by seq, never by created_at.
    """
    created_at = _EPOCH + timedelta(milliseconds=message.created_at_ms)
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "seq": message.seq,
        "sender_id": str(message.sender_id),
        "sender_name": message.sender_name,
        "client_msg_id": message.client_msg_id,
        "message_type": message.message_type,
        "content": message.content,
        "created_at": created_at.isoformat(),
        "status": message.status,
    }
