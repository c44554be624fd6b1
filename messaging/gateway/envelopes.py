"""Conversions between Message rows, the protobuf ChatMessage of the Kafka envelopes and
the client JSON shape of a message (the same keys as messaging.representations)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from messaging import attachments
from messaging.models import Message
from messaging.representations import loaded_reply_preview
from protos.gochat.v1 import envelopes_pb2 as pb

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _attachment_pb(message: Message) -> pb.Attachment | None:
    """The message's attachment if it is loaded on the row (never a query)."""
    rel = Message.attachment.related
    upload = rel.get_cached_value(message) if rel.is_cached(message) else None
    if upload is None:
        return None
    return pb.Attachment(
        id=upload.id,
        name=upload.name,
        size=upload.size,
        content_type=upload.content_type,
        width=upload.width or 0,
        height=upload.height or 0,
        has_thumbnail=bool(upload.thumbnail_name),
    )


def chat_message_from_model(message: Message, *, sender_name: str = "") -> pb.ChatMessage:
    chat = _chat_message(message, sender_name)
    _add_reply_and_mentions(chat, message)
    return chat


def _add_reply_and_mentions(chat: pb.ChatMessage, message: Message) -> None:
    # The quoted message travels only when loaded (the writer sets it): never a query.
    preview = loaded_reply_preview(message)
    if preview is not None:
        chat.reply_to.CopyFrom(
            pb.ReplyPreview(
                id=int(preview["id"]),
                seq=preview["seq"],
                sender_id=int(preview["sender_id"]),
                sender_name=preview["sender_name"],
                content=preview["content"],
                message_type=preview["message_type"],
                status=preview["status"],
            )
        )
    if message.mentions:
        chat.mention_user_ids.extend(message.mentions)


def _reply_dict_from_pb(message: pb.ChatMessage) -> dict[str, Any] | None:
    if not message.HasField("reply_to"):
        return None
    r = message.reply_to
    return {
        "id": str(r.id),
        "seq": r.seq,
        "sender_id": str(r.sender_id),
        "sender_name": r.sender_name,
        "content": r.content,
        "message_type": r.message_type,
        "status": r.status,
    }


def _chat_message(message: Message, sender_name: str) -> pb.ChatMessage:
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
        edited_at_ms=_to_ms(message.edited_at) if message.edited_at else 0,
        reactions=[
            pb.ReactionCount(emoji=r["emoji"], count=r["count"]) for r in getattr(message, "reaction_counts", ())
        ],
        attachment=_attachment_pb(message),
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
        "edited_at": (_EPOCH + timedelta(milliseconds=message.edited_at_ms)).isoformat()
        if message.edited_at_ms
        else None,
        # No "me" here: one envelope serves every recipient; a client knows its own reaction.
        "reactions": [{"emoji": r.emoji, "count": r.count} for r in message.reactions],
        "reply_to": _reply_dict_from_pb(message),
        "mentions": [str(u) for u in message.mention_user_ids],
        # Signed here, as the envelope becomes JSON for the members it is delivered to.
        "attachment": attachment_dict_from_pb(message.attachment)
        if message.HasField("attachment") and message.status == Message.Status.NORMAL
        else None,
    }


def presence_dicts_from_pb(changes: list[pb.PresenceChange]) -> list[dict[str, Any]]:
    """The client shape of a PRESENCE envelope's changes (ids as strings, ISO time)."""
    return [
        {
            "user_id": str(change.user_id),
            "online": change.online,
            "last_seen": (_EPOCH + timedelta(milliseconds=change.last_seen_ms)).isoformat() if change.last_seen_ms else None,
        }
        for change in changes
    ]


def attachment_dict_from_pb(attachment: pb.Attachment) -> dict[str, Any]:
    """The client shape of an envelope's attachment, its URLs signed now (for delivery)."""
    return attachments.attachment_dict(
        attachment_id=attachment.id,
        name=attachment.name,
        size=attachment.size,
        content_type=attachment.content_type,
        width=attachment.width,
        height=attachment.height,
        has_thumbnail=attachment.has_thumbnail,
    )
