"""Model rows -> protobuf messages of protos/gochat/v1 (int64 ids, millisecond times)."""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ObjectDoesNotExist

from messaging.gateway.envelopes import attachment_dict_from_pb, chat_message_from_model
from messaging.representations import loaded_sender_name
from protos.gochat.v1 import envelopes_pb2, repo_pb2


def ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def user_info(user) -> repo_pb2.UserInfo:  # noqa: ANN001 - accounts.User
    return repo_pb2.UserInfo(
        id=user.id, username=user.username, nickname=user.nickname, avatar=user.avatar, status=user.status
    )


def chat_message(message) -> envelopes_pb2.ChatMessage:  # noqa: ANN001 - messaging.Message
    """The same ChatMessage the Kafka envelopes carry (messaging/gateway/envelopes.py),
    plus the attachment's signed URLs: a gRPC caller is the member it is answered to."""
    chat = chat_message_from_model(message, sender_name=loaded_sender_name(message))
    if chat.HasField("attachment"):
        links = attachment_dict_from_pb(chat.attachment)
        chat.attachment.url = links["url"]
        chat.attachment.thumbnail_url = links.get("thumbnail_url") or ""
    return chat


def group_info(group) -> repo_pb2.GroupInfo:  # noqa: ANN001 - groups.Group
    try:
        conversation_id = group.conversation.id  # reverse one-to-one kept by messaging.group_sync
    except ObjectDoesNotExist:
        conversation_id = 0
    return repo_pb2.GroupInfo(
        id=group.id,
        name=group.name,
        description=group.description,
        avatar=group.avatar,
        owner_id=group.owner_id,
        max_members=group.max_members,
        member_count=group.member_count,
        conversation_id=conversation_id,
        created_at_ms=ms(group.created_at),
    )


def conversation_info(conversation) -> repo_pb2.ConversationInfo:  # noqa: ANN001 - messaging.Conversation
    # Member counts come from the group's counter (single chats have two): no COUNT(*).
    group = conversation.group if conversation.group_id else None
    return repo_pb2.ConversationInfo(
        id=conversation.id,
        type=conversation.type,
        group_id=conversation.group_id or 0,
        last_seq=conversation.last_seq,
        last_message_id=conversation.last_message_id or 0,
        last_message_preview=conversation.last_message_preview,
        last_message_sender_id=conversation.last_message_sender_id or 0,
        last_message_at_ms=ms(conversation.last_message_at),
        member_count=group.member_count if group is not None else 2,
        created_at_ms=ms(conversation.created_at),
    )
