"""Writes of the messaging app. `send_message` is the only code that creates Message rows,
whatever the entry point (REST, WebSocket via the logic consumer, gRPC)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Subquery
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from gochat_site.errors import GoChatError, InvalidParams, NotAMember, NotFound, PermissionDenied
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


@dataclass(frozen=True)
class SendRequest:
    """One message to persist, as a client asked for it (fields not yet validated)."""

    sender_id: int
    conversation_id: object
    content: object
    client_msg_id: object
    message_type: object = Message.Type.TEXT


# One outcome per request, in request order: the stored (or first) message, or the
# domain error that refused this request alone.
SendOutcome = Union[SendResult, GoChatError]


def send_message(
    *,
    sender_id: int,
    conversation_id: int,
    content: str,
    client_msg_id: str,
    message_type: str = Message.Type.TEXT,
) -> SendResult:
    """Persist one message (REST, gRPC, seed): send_messages() with a batch of one; the
    refusal, if any, is raised."""
    (outcome,) = send_messages(
        [
            SendRequest(
                sender_id=sender_id,
                conversation_id=conversation_id,
                content=content,
                client_msg_id=client_msg_id,
                message_type=message_type,
            )
        ]
    )
    if isinstance(outcome, GoChatError):
        raise outcome
    return outcome


def _clean_request(request: SendRequest) -> SendRequest:
    content, client_msg_id, message_type = check_message_input(
        content=request.content, client_msg_id=request.client_msg_id, message_type=request.message_type
    )
    conversation_id = request.conversation_id
    if isinstance(conversation_id, bool) or not isinstance(conversation_id, (int, str)):
        conversation_id = None
    else:
        text = str(conversation_id).strip()
        conversation_id = int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**63 else None
    if conversation_id is None:
        raise InvalidParams("invalid conversation_id", {"conversation_id": ["A valid id is required."]})
    return SendRequest(
        sender_id=int(request.sender_id),
        conversation_id=conversation_id,
        content=content,
        client_msg_id=client_msg_id,
        message_type=message_type,
    )


def send_messages(requests: Sequence[SendRequest]) -> list[SendOutcome]:
    """Persist a batch of messages in one transaction; one outcome per request, in order.

    The statements do not grow with the batch: the batch's conversations are locked once
    each, in id order (two batches never wait on each other in a cycle); membership and
    the senders' names come in one query, de-duplication in one, the new rows in one
    multi-row insert, and the conversations and the senders' read pointers in one update
    each. Within a conversation the requests keep their order, so seq follows it.

    A request that is invalid, from a non-member or for an unknown conversation is refused
    on its own; the rest of the batch is stored. A repeat of (conversation, sender,
    client_msg_id), earlier or within the batch, gets the first message back
    (created=False). Database errors propagate: nothing of the batch is stored then.
    """
    outcomes: list[SendOutcome | None] = [None] * len(requests)
    cleaned: dict[int, SendRequest] = {}
    for index, request in enumerate(requests):
        try:
            cleaned[index] = _clean_request(request)
        except GoChatError as exc:
            outcomes[index] = exc
    if cleaned:
        try:
            with transaction.atomic():
                _persist(cleaned, outcomes)
        except IntegrityError:
            # Only a writer that bypasses the conversation lock can get here (the lock
            # covers both unique keys). Retry one by one: each then sees the other's row.
            if len(cleaned) == 1:
                raise
            for index, request in cleaned.items():
                outcomes[index] = send_messages([request])[0]
    for outcome in outcomes:
        if isinstance(outcome, SendResult) and outcome.created:
            message = outcome.message
            logger.debug(
                "message_persisted",
                extra={"conversation_id": message.conversation_id, "seq": message.seq, "message_id": message.id},
            )
    return outcomes  # type: ignore[return-value]


def _persist(cleaned: dict[int, SendRequest], outcomes: list[SendOutcome | None]) -> None:
    """The body of send_messages' transaction; fills `outcomes` for the cleaned requests."""
    conversation_ids = sorted({r.conversation_id for r in cleaned.values()})
    sender_ids = sorted({r.sender_id for r in cleaned.values()})
    # The row locks serialise writers of one conversation, which is what makes seq
    # gap-free and the de-duplication check race-free (its key includes the conversation).
    last_seqs: dict[int, int] = dict(
        Conversation.objects.select_for_update()
        .filter(id__in=conversation_ids)
        .order_by("id")
        .values_list("id", "last_seq")
    )
    members = {
        (m.conversation_id, m.user_id): m
        for m in ConversationMember.objects.filter(conversation_id__in=conversation_ids, user_id__in=sender_ids)
        .select_related("user")
        .only("id", "conversation_id", "user__id", "user__username", "user__nickname")
    }
    keys = {(r.conversation_id, r.sender_id, r.client_msg_id) for r in cleaned.values()}
    existing: dict[tuple[int, int, str], Message] = {}
    if keys:
        for message in Message.objects.filter(
            conversation_id__in=conversation_ids,
            sender_id__in=sender_ids,
            client_msg_id__in={key[2] for key in keys},
        ):
            key = (message.conversation_id, message.sender_id, message.client_msg_id)
            if key in keys:
                existing[key] = message
    new_rows: list[Message] = []
    first_in_batch: dict[tuple[int, int, str], int] = {}
    repeats: list[tuple[int, int]] = []  # (index of a repeat, index of its first in this batch)
    for index, request in cleaned.items():
        if request.conversation_id not in last_seqs:
            outcomes[index] = NotFound("conversation not found")
            continue
        member = members.get((request.conversation_id, request.sender_id))
        if member is None:
            outcomes[index] = NotAMember()
            continue
        key = (request.conversation_id, request.sender_id, request.client_msg_id)
        if key in existing:
            first = existing[key]
            first.sender = member.user  # spares routing a query for the name, as below
            outcomes[index] = SendResult(first, created=False)
            continue
        if key in first_in_batch:
            repeats.append((index, first_in_batch[key]))
            continue
        first_in_batch[key] = index
        seq = last_seqs[request.conversation_id] + 1
        last_seqs[request.conversation_id] = seq
        message = Message(
            conversation_id=request.conversation_id,
            seq=seq,
            sender_id=request.sender_id,
            client_msg_id=request.client_msg_id,
            message_type=request.message_type,
            content=request.content,
        )
        # Routing and the replies name the sender; this spares them a query.
        message.sender = member.user
        new_rows.append(message)
        outcomes[index] = SendResult(message, created=True)
    if not new_rows:
        return
    Message.objects.bulk_create(new_rows)
    for index, first in repeats:
        outcomes[index] = SendResult(outcomes[first].message, created=False)  # type: ignore[union-attr]
    last_by_conversation: dict[int, Message] = {}
    read_by_member: dict[int, int] = {}
    for message in new_rows:
        last_by_conversation[message.conversation_id] = message  # rows are in seq order
        # The sender has read what they wrote. Every new seq is above the member's
        # pointers (they never pass last_seq, and the lock is held), so no GREATEST needed.
        read_by_member[members[(message.conversation_id, message.sender_id)].id] = message.seq
    stamps = [connection.ops.adapt_datetimefield_value(m.created_at) for m in last_by_conversation.values()]
    _update_by_id(
        Conversation._meta.db_table,
        ("last_seq", "last_message_id", "last_message_preview", "last_message_sender_id", "last_message_at", "updated_at"),
        [
            (conversation_id, (m.seq, m.id, m.content[:PREVIEW_LENGTH], m.sender_id, at, at))
            for (conversation_id, m), at in zip(last_by_conversation.items(), stamps)
        ],
    )
    _update_by_id(
        ConversationMember._meta.db_table,
        ("last_read_seq", "last_delivered_seq"),
        [(member_id, (seq, seq)) for member_id, seq in read_by_member.items()],
    )


def _update_by_id(table: str, columns: Sequence[str], rows: Sequence[tuple[int, Sequence[object]]]) -> None:
    """One UPDATE setting `columns` of each row id to its own values (CASE id WHEN ...).

    QuerySet.bulk_update builds the same statement through expressions, which cost ~45% of
    the logic's CPU under load; this builds it as text. Values go as parameters.
    """
    for start in range(0, len(rows), UPDATE_CHUNK_ROWS):
        _update_chunk(table, columns, rows[start : start + UPDATE_CHUNK_ROWS])


# Rows per UPDATE statement: keeps the parameters (2 per column and row, +1 per row) well
# under SQLite's and PostgreSQL's limits.
UPDATE_CHUNK_ROWS = 1000


def _update_chunk(table: str, columns: Sequence[str], rows: Sequence[tuple[int, Sequence[object]]]) -> None:
    qn = connection.ops.quote_name
    assignments = []
    params: list[object] = []
    for position, column in enumerate(columns):
        cases = " ".join("WHEN %s THEN %s" for _ in rows)
        assignments.append(f"{qn(column)} = CASE {qn('id')} {cases} END")
        for row_id, values in rows:
            params.extend((row_id, values[position]))
    params.extend(row_id for row_id, _ in rows)
    placeholders = ", ".join("%s" for _ in rows)
    sql = f"UPDATE {qn(table)} SET {', '.join(assignments)} WHERE {qn('id')} IN ({placeholders})"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


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
        # Well-formed but refused by the rules: 1005 on every entry point, as for groups.
        raise PermissionDenied("cannot start a conversation with yourself", {"user_id": ["Must be another user."]})
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
