"""Writes of the messaging app. `send_message` is the only code that creates Message rows,
whatever the entry point (REST, WebSocket via the logic consumer, gRPC)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Subquery
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from gochat_site.errors import InvalidParams, NotAMember, NotFound
from messaging import cache
from messaging.models import Conversation, ConversationMember, Device, Message

logger = logging.getLogger(__name__)
User = get_user_model()

PREVIEW_LENGTH = 200


@dataclass(frozen=True)
class SendResult:
    message: Message
    # False when (sender, client_msg_id) was seen before and the first message came back.
    created: bool


def check_message_input(*, content: object, client_msg_id: object, message_type: object) -> tuple[str, str, str]:
    """Validate a message's fields; return them cleaned or raise InvalidParams (1001)."""
    details: dict[str, list[str]] = {}
    if not isinstance(client_msg_id, str) or not client_msg_id.strip():
        details["client_msg_id"] = ["A non-empty string is required."]
    elif len(client_msg_id) > 64:
        details["client_msg_id"] = ["At most 64 characters."]
    if not isinstance(content, str) or content == "":
        details["content"] = ["A non-empty string is required."]
    elif len(content) > settings.MESSAGE_MAX_CONTENT_LENGTH:
        details["content"] = [f"At most {settings.MESSAGE_MAX_CONTENT_LENGTH} characters."]
    if message_type is None or message_type == "":
        message_type = Message.Type.TEXT
    if message_type not in Message.Type.values or message_type == Message.Type.SYSTEM:
        details["message_type"] = [f"One of {[t for t in Message.Type.values if t != 'system']}."]
    if details:
        raise InvalidParams("invalid message", details)
    return content, client_msg_id.strip(), message_type  # type: ignore[union-attr,return-value]


def send_message(
    *,
    sender_id: int,
    conversation_id: int,
    content: str,
    client_msg_id: str,
    message_type: str = Message.Type.TEXT,
) -> SendResult:
    """Persist one message: membership check, de-duplication, seq assignment and insert in
    one transaction. A repeat of (sender, client_msg_id) returns the first message."""
    content, client_msg_id, message_type = check_message_input(
        content=content, client_msg_id=client_msg_id, message_type=message_type
    )
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise InvalidParams("invalid conversation_id", {"conversation_id": ["A valid id is required."]}) from None
    try:
        with transaction.atomic():
            # The row lock on the conversation serialises senders of one conversation,
            # which is what makes seq gap-free; other conversations proceed in parallel.
            conversation = Conversation.objects.select_for_update().filter(id=conversation_id).first()
            if conversation is None:
                raise NotFound("conversation not found")
            # One round trip for three answers: is the sender a member, was this
            # client_msg_id seen before (checked under the lock: a concurrent repeat waits
            # above and then sees the first), and the sender's name for routing.
            member = (
                ConversationMember.objects.filter(conversation_id=conversation_id, user_id=sender_id)
                .select_related("user")
                .only("id", "user", "user__username", "user__nickname")
                .annotate(
                    existing_id=Subquery(
                        Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).values("id")[:1]
                    )
                )
                .first()
            )
            if member is None:
                raise NotAMember()
            if member.existing_id is not None:
                return SendResult(Message.objects.get(id=member.existing_id), created=False)
            seq = conversation.last_seq + 1
            message = Message.objects.create(
                conversation_id=conversation_id,
                seq=seq,
                sender_id=sender_id,
                client_msg_id=client_msg_id,
                message_type=message_type,
                content=content,
            )
            # Routing and the gRPC reply name the sender; this spares them a query.
            message.sender = member.user
            Conversation.objects.filter(id=conversation_id).update(
                last_seq=seq,
                last_message_id=message.id,
                last_message_preview=content[:PREVIEW_LENGTH],
                last_message_sender_id=sender_id,
                last_message_at=message.created_at,
                updated_at=message.created_at,
            )
            # The sender has read what they wrote.
            ConversationMember.objects.filter(conversation_id=conversation_id, user_id=sender_id).update(
                last_read_seq=Greatest(F("last_read_seq"), seq), last_delivered_seq=Greatest(F("last_delivered_seq"), seq)
            )
    except IntegrityError:
        # Same (sender, client_msg_id) raced in through another conversation's lock.
        existing = Message.objects.filter(sender_id=sender_id, client_msg_id=client_msg_id).first()
        if existing is None:
            raise
        return SendResult(existing, created=False)
    logger.info("message_persisted", extra={"conversation_id": conversation_id, "seq": seq, "message_id": message.id})
    return SendResult(message, created=True)


def pair_key(user_a: int, user_b: int) -> str:
    low, high = sorted((int(user_a), int(user_b)))
    return f"{low}:{high}"


def get_or_create_single_conversation(*, user_id: int, peer_id: int) -> tuple[Conversation, bool]:
    """The one-to-one conversation of two users, created on first use."""
    try:
        peer_id = int(peer_id)
    except (TypeError, ValueError):
        raise InvalidParams("invalid peer id", {"user_id": ["A valid id is required."]}) from None
    if peer_id == int(user_id):
        raise InvalidParams("cannot start a conversation with yourself", {"user_id": ["Must be another user."]})
    if not User.objects.filter(id=peer_id, is_active=True).exists():
        raise NotFound("user not found")
    key = pair_key(user_id, peer_id)
    existing = Conversation.objects.filter(pair_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(type=Conversation.Type.SINGLE, pair_key=key)
            ConversationMember.objects.bulk_create(
                [ConversationMember(conversation=conversation, user_id=u) for u in (int(user_id), peer_id)]
            )
    except IntegrityError:
        return Conversation.objects.get(pair_key=key), False
    return conversation, True


def mark_read(*, user_id: int, conversation_id: int, seq: int) -> int:
    """Move the reader's last_read_seq forward (never back, never past last_seq)."""
    try:
        seq = int(seq)
    except (TypeError, ValueError):
        raise InvalidParams("invalid seq", {"seq": ["An integer is required."]}) from None
    if seq < 0:
        raise InvalidParams("invalid seq", {"seq": ["Must be >= 0."]})
    member = _member_or_raise(user_id=user_id, conversation_id=conversation_id)
    last_seq = Conversation.objects.filter(id=member.conversation_id).values_list("last_seq", flat=True).get()
    target = min(seq, last_seq)
    ConversationMember.objects.filter(id=member.id).update(
        last_read_seq=Greatest(F("last_read_seq"), Least(target, last_seq))
    )
    return ConversationMember.objects.filter(id=member.id).values_list("last_read_seq", flat=True).get()


def update_member_settings(
    *, user_id: int, conversation_id: int, muted: bool | None = None, pinned: bool | None = None
) -> ConversationMember:
    member = _member_or_raise(user_id=user_id, conversation_id=conversation_id)
    changed = []
    if muted is not None:
        member.muted = bool(muted)
        changed.append("muted")
    if pinned is not None:
        member.pinned = bool(pinned)
        changed.append("pinned")
    if changed:
        member.save(update_fields=changed)
        cache.forget_muted(member.conversation_id)
    return member


def _member_or_raise(*, user_id: int, conversation_id: int) -> ConversationMember:
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise InvalidParams("invalid conversation_id") from None
    member = ConversationMember.objects.filter(conversation_id=conversation_id, user_id=user_id).first()
    if member is None:
        if not Conversation.objects.filter(id=conversation_id).exists():
            raise NotFound("conversation not found")
        raise NotAMember()
    return member


def register_device(*, user_id: int, platform: str, token: str) -> Device:
    """Register a push token; a token seen under another user moves to this one."""
    if platform not in Device.Platform.values:
        raise InvalidParams("invalid platform", {"platform": [f"One of {Device.Platform.values}."]})
    if not isinstance(token, str) or not token.strip() or len(token) > 512:
        raise InvalidParams("invalid token", {"token": ["A non-empty string of at most 512 characters."]})
    device, _ = Device.objects.update_or_create(
        token=token.strip(), defaults={"user_id": user_id, "platform": platform, "last_seen": timezone.now()}
    )
    return device


def delete_device(*, user_id: int, token: str) -> None:
    deleted, _ = Device.objects.filter(user_id=user_id, token=token).delete()
    if not deleted:
        raise NotFound("device not found")


def delete_device_by_token(*, token: str) -> int:
    """Used by push when a provider says the token is dead (APNs 410, FCM UNREGISTERED)."""
    deleted, _ = Device.objects.filter(token=token).delete()
    return deleted


def delete_messages_before(*, conversation_id: int, max_seq: int, before, batch_size: int = 1000) -> int:  # noqa: ANN001
    """Delete a conversation's messages with seq <= max_seq created before `before`
    (a datetime), batch_size rows per transaction; return how many were deleted.

    Used by the archive job once the messages are safely on disk. Conversation.last_seq
    is left alone, so new messages keep counting up and unread counts stay right.
    """
    total = 0
    while True:
        ids = list(
            Message.objects.filter(conversation_id=conversation_id, seq__lte=max_seq, created_at__lt=before)
            .order_by("seq")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            _, per_model = Message.objects.filter(id__in=ids).delete()
        # Only the messages: rows that cascade with them (search entries) are not counted.
        total += per_model.get(Message._meta.label, 0)
    if total:
        logger.info("messages_deleted", extra={"conversation_id": conversation_id, "messages": total, "max_seq": max_seq})
    return total
