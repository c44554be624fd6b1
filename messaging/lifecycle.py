"""Writes of a sent message's lifecycle: edit, recall, delete-for-me (hide) and reactions.

None of them creates a message or touches seq: the message keeps its place, so a client's
gap detection (seq gap-free per conversation) is never disturbed. Every entry point (REST,
the logic consumer for WebSocket edits and recalls, gRPC, the gateway for reactions and
hides) calls these functions; they check permission themselves and raise domain errors.
Routing the `update` frame is the caller's job (messaging.routing.route_message_update),
after the commit.
"""
from __future__ import annotations

import logging
from datetime import timedelta

import emoji as emoji_data
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from gochat_site.errors import Conflict, InvalidParams, NotAMember, NotFound, PermissionDenied
from messaging.models import Conversation, ConversationMember, HiddenMessage, Message, MessageReaction
from messaging.services import PREVIEW_LENGTH, check_message_input

logger = logging.getLogger(__name__)

EDIT = "edit"
RECALL = "recall"
REACTION = "reaction"
HIDE = "hide"
UPDATE_KINDS = (EDIT, RECALL, REACTION, HIDE)

EMOJI_MAX_LENGTH = 32


def check_content(content: object) -> str:
    """An edit's new content, by exactly the rules of a send (InvalidParams, 1001)."""
    try:
        cleaned, _, _ = check_message_input(content=content, client_msg_id="edit", message_type="text")
    except InvalidParams as exc:
        raise InvalidParams("invalid content", {"content": exc.details.get("content", ["Invalid."])}) from None
    return cleaned


def check_emoji(value: object) -> str:
    """A reaction: "" (remove) or exactly one emoji, as Unicode's emoji data lists them
    (a ZWJ sequence or a flag counts as one). InvalidParams (1001) otherwise."""
    if value == "":
        return ""
    if not isinstance(value, str) or len(value) > EMOJI_MAX_LENGTH or not emoji_data.is_emoji(value):
        raise InvalidParams("invalid emoji", {"emoji": ["A single emoji (or \"\" to remove) is required."]})
    return value


def _clean_id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidParams(f"invalid {name}", {name: ["A valid id is required."]})
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**63:
        raise InvalidParams(f"invalid {name}", {name: ["A valid id is required."]})
    return int(text)


def access_message(
    *,
    user_id: int,
    message_id: object = None,
    conversation_id: object = None,
    client_msg_id: object = None,
    for_update: bool = False,
) -> Message:
    """The message the caller names, checked to be in a conversation they are a member of.

    By message_id (optionally checked against conversation_id), or by (conversation_id,
    client_msg_id) of the caller's own message: a WebSocket client edits or recalls a
    message it sent before the send-ack told it the id. NotFound (1003) for no such
    message, NotAMember (1005) when the caller is not in its conversation."""
    rows = Message.objects.select_related("sender", "conversation__group")
    if for_update:
        # of=("self",): lock the message row only (the conversation lock is the send path's).
        rows = rows.select_for_update(of=("self",))
    if message_id not in (None, "", 0):
        rows = rows.filter(id=_clean_id(message_id, "message_id"))
        if conversation_id not in (None, "", 0):
            rows = rows.filter(conversation_id=_clean_id(conversation_id, "conversation_id"))
    elif client_msg_id not in (None, ""):
        if not isinstance(client_msg_id, str) or len(client_msg_id) > 64:
            raise InvalidParams("invalid client_msg_id", {"client_msg_id": ["At most 64 characters."]})
        rows = rows.filter(
            conversation_id=_clean_id(conversation_id, "conversation_id"),
            sender_id=user_id,
            client_msg_id=client_msg_id.strip(),
        )
    else:
        raise InvalidParams("message_id or client_msg_id is required", {"message_id": ["This field is required."]})
    message = rows.first()
    if message is None:
        raise NotFound("message not found")
    if not ConversationMember.objects.filter(conversation_id=message.conversation_id, user_id=user_id).exists():
        raise NotAMember()
    return message


def _within(message: Message, seconds: int) -> bool:
    return timezone.now() - message.created_at <= timedelta(seconds=seconds)


def _is_group_admin(message: Message, user_id: int) -> bool:
    from groups.models import GroupMember
    from groups.selectors import member_role

    group = message.conversation.group
    if group is None:
        return False
    return member_role(group_id=group.id, user_id=user_id) in (GroupMember.Role.OWNER, GroupMember.Role.ADMIN)


def _set_preview(message: Message, preview: str) -> None:
    # The conversation list shows the last message's text: it must follow an edit and
    # must not keep a recalled text. One UPDATE, a no-op unless this is the last message.
    Conversation.objects.filter(id=message.conversation_id, last_message_id=message.id).update(
        last_message_preview=preview[:PREVIEW_LENGTH]
    )


def edit_message(
    *,
    user_id: int,
    content: object,
    message_id: object = None,
    conversation_id: object = None,
    client_msg_id: object = None,
) -> Message:
    """Replace a message's content (the sender, within MESSAGE_EDIT_SECONDS); sets
    edited_at. The search index follows the row (PostgreSQL's expression index, SQLite's
    FTS5 update trigger), so the new text is what search finds."""
    text = check_content(content)
    with transaction.atomic():
        message = access_message(
            user_id=user_id,
            message_id=message_id,
            conversation_id=conversation_id,
            client_msg_id=client_msg_id,
            for_update=True,
        )
        if message.sender_id != int(user_id):
            raise PermissionDenied("only the sender can edit a message")
        if message.status == Message.Status.RECALLED:
            raise Conflict("the message was recalled")
        if message.message_type == Message.Type.SYSTEM:
            raise PermissionDenied("system messages cannot be edited")
        if not _within(message, settings.MESSAGE_EDIT_SECONDS):
            raise PermissionDenied(
                "the edit window has passed", {"edit_seconds": settings.MESSAGE_EDIT_SECONDS}
            )
        message.content = text
        message.edited_at = timezone.now()
        message.save(update_fields=["content", "edited_at"])
        _set_preview(message, text)
    logger.info("message_edited", extra={"message_id": message.id, "conversation_id": message.conversation_id})
    return message


def recall_message(
    *, user_id: int, message_id: object = None, conversation_id: object = None, client_msg_id: object = None
) -> Message:
    """Recall a message: its sender within MESSAGE_RECALL_SECONDS, or an owner/admin of
    its group at any time. The content is blanked in the row (so in the search index, by
    the same mechanism as an edit: the SQLite trigger drops a row that is no longer
    'normal', the PostgreSQL index holds the empty text), its reactions are dropped, and
    a pending push finds it recalled and sends nothing (tasks.push.services). Recalling a
    recalled message again returns it unchanged."""
    with transaction.atomic():
        message = access_message(
            user_id=user_id,
            message_id=message_id,
            conversation_id=conversation_id,
            client_msg_id=client_msg_id,
            for_update=True,
        )
        allowed = (message.sender_id == int(user_id) and _within(message, settings.MESSAGE_RECALL_SECONDS)) or (
            _is_group_admin(message, int(user_id))
        )
        if not allowed:
            if message.sender_id == int(user_id):
                raise PermissionDenied(
                    "the recall window has passed", {"recall_seconds": settings.MESSAGE_RECALL_SECONDS}
                )
            raise PermissionDenied("only the sender or a group owner/admin can recall a message")
        if message.status == Message.Status.RECALLED:
            return message
        message.content = ""
        message.status = Message.Status.RECALLED
        message.save(update_fields=["content", "status"])
        MessageReaction.objects.filter(message_id=message.id).delete()
        _set_preview(message, "")
    logger.info(
        "message_recalled",
        extra={"message_id": message.id, "conversation_id": message.conversation_id, "by": int(user_id)},
    )
    return message


def hide_message(*, user_id: int, message_id: object) -> Message:
    """Delete-for-me: the caller stops seeing the message in history and sync (which
    report its seq in `hidden_seqs`, so it never looks like a gap). Idempotent."""
    message = access_message(user_id=user_id, message_id=message_id)
    try:
        with transaction.atomic():
            HiddenMessage.objects.get_or_create(
                user_id=user_id, message_id=message.id, defaults={"conversation_id": message.conversation_id}
            )
    except IntegrityError:
        pass  # hidden by a concurrent request of the same user: the same outcome
    return message


def set_reaction(*, user_id: int, message_id: object, emoji: object) -> Message:
    """Set the caller's one reaction to a message ("" removes it)."""
    value = check_emoji(emoji)
    message = access_message(user_id=user_id, message_id=message_id)
    if message.status == Message.Status.RECALLED:
        raise Conflict("the message was recalled")
    if value == "":
        MessageReaction.objects.filter(message_id=message.id, user_id=user_id).delete()
        return message
    try:
        with transaction.atomic():
            MessageReaction.objects.update_or_create(
                message_id=message.id, user_id=user_id, defaults={"emoji": value}
            )
    except IntegrityError:
        # Two requests of the same user raced to create: the unique key kept one; set ours.
        MessageReaction.objects.filter(message_id=message.id, user_id=user_id).update(emoji=value)
    return message
