"""Writes of the messaging app. `send_message` is the only code that creates Message rows,
whatever the entry point (REST, WebSocket via the logic consumer, gRPC)."""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Union

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.db.models import Case, F, Field, Subquery, Value, When
from django.utils import timezone

from gochat_site.errors import GoChatError, InvalidParams, NotAMember, NotFound, PermissionDenied
from messaging import attachments, cache, hot_sql, presence_push
from messaging.models import Attachment, Conversation, ConversationMember, Device, Message

logger = logging.getLogger(__name__)
User = get_user_model()

PREVIEW_LENGTH = 200


@dataclass(frozen=True)
class SendResult:
    message: Message
    # False when (sender, client_msg_id) was seen before and the first message came back.
    created: bool
    # {member id: muted} of the conversation, read in the same transaction, when routing
    # delivers it inline; None for a group left to the fan-out task (routing.ToRoute).
    members: Mapping[int, bool] | None = None


# What a client may send (system messages are the server's own); a set, as Type.values
# builds its list on every call.
CLIENT_MESSAGE_TYPES = frozenset(t for t in Message.Type.values if t != Message.Type.SYSTEM)


def check_message_input(
    *, content: object, client_msg_id: object, message_type: object, has_attachment: bool = False
) -> tuple[str, str, str]:
    """Validate a message's fields; return them cleaned or raise InvalidParams (1001).

    With an attachment the content (a caption) may be empty, and an empty message_type
    stays "": the persist step takes it from the upload's content type."""
    details: dict[str, list[str]] = {}
    if has_attachment and content is None:
        content = ""
    if not isinstance(client_msg_id, str) or not client_msg_id.strip():
        details["client_msg_id"] = ["A non-empty string is required."]
    elif len(client_msg_id) > 64:
        details["client_msg_id"] = ["At most 64 characters."]
    if not isinstance(content, str) or (content == "" and not has_attachment):
        details["content"] = ["A non-empty string is required."]
    elif len(content) > settings.MESSAGE_MAX_CONTENT_LENGTH:
        details["content"] = [f"At most {settings.MESSAGE_MAX_CONTENT_LENGTH} characters."]
    if message_type is None or message_type == "":
        message_type = "" if has_attachment else Message.Type.TEXT
    if message_type != "" and message_type not in CLIENT_MESSAGE_TYPES:
        details["message_type"] = [f"One of {sorted(CLIENT_MESSAGE_TYPES)}."]
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
    reply_to: object = None  # the quoted message's id (same conversation), or None
    # An upload of the sender (POST uploads) to attach; None/0 for none.
    attachment_id: object = None


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
    reply_to: object = None,
    attachment_id: object = None,
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
                reply_to=reply_to,
                attachment_id=attachment_id,
            )
        ]
    )
    if isinstance(outcome, GoChatError):
        raise outcome
    return outcome


def _clean_request(request: SendRequest) -> SendRequest:
    attachment_id = _clean_attachment_id(request.attachment_id)
    content, client_msg_id, message_type = check_message_input(
        content=request.content,
        client_msg_id=request.client_msg_id,
        message_type=request.message_type,
        has_attachment=attachment_id is not None,
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
        reply_to=_clean_reply_to(request.reply_to),
        attachment_id=attachment_id,
    )


def _clean_reply_to(value: object) -> int | None:
    """None / "" / 0 (protobuf's unset): not a reply; else a valid id or InvalidParams."""
    if value is None or value == "" or value == 0:
        return None
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
        raise InvalidParams("invalid reply_to", {"reply_to": ["A valid message id is required."]})
    return int(text)


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
            # Pipeline mode on PostgreSQL: BEGIN and the lock and its two reads go in one
            # round trip, the insert, the updates and COMMIT in another.
            with hot_sql.write_transaction():
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
    keys = {(r.conversation_id, r.sender_id, r.client_msg_id) for r in cleaned.values()}
    # The row locks serialise writers of one conversation, which is what makes seq
    # gap-free and the de-duplication check race-free (its key includes the conversation).
    # The two reads after the lock are sent with it (one round trip in pipeline mode);
    # the server runs them in order, so they see the rows as of after the lock.
    pending_lock = hot_sql.send_lock_conversations(conversation_ids)
    pending_members = hot_sql.send_sender_members(conversation_ids, sender_ids)
    pending_existing = hot_sql.send_messages_with_keys(conversation_ids, sender_ids, {key[2] for key in keys})
    # Routing's member read rides the same round trip (it needs no statement after commit).
    pending_routed = hot_sql.send_routed_members(conversation_ids, settings.LARGE_GROUP_THRESHOLD)
    locked = pending_lock.result()
    last_seqs: dict[int, int] = {row[0]: row[1] for row in locked}
    # Hung on every message of the batch: routing then knows the one-to-one ones.
    with_type = {row[0]: hot_sql.conversation_with_type(row[0], row[2]) for row in locked}
    group_ids = {row[0] for row in locked if row[2] == Conversation.Type.GROUP}
    members = pending_members.result()
    routed = pending_routed.result()
    existing: dict[tuple[int, int, str], Message] = {}
    for message in pending_existing.result():
        key = (message.conversation_id, message.sender_id, message.client_msg_id)
        if key in keys:
            existing[key] = message
    uploads = _lock_attachments(cleaned)
    reply_targets = _reply_targets(cleaned)
    mentionable = _mentionable_members(cleaned, group_ids)
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
            first.conversation = with_type[request.conversation_id]
            _cache_attachment(first, uploads.get(request.attachment_id), link=False)
            outcomes[index] = SendResult(first, created=False, members=routed.get(request.conversation_id))
            continue
        if key in first_in_batch:
            repeats.append((index, first_in_batch[key]))
            continue
        reply_target = reply_targets.get(request.reply_to) if request.reply_to else None
        if request.reply_to and (reply_target is None or reply_target.conversation_id != request.conversation_id):
            outcomes[index] = InvalidParams(
                "invalid reply_to", {"reply_to": ["Not a message of this conversation."]}
            )
            continue
        refusal, message_type = _check_attachment(request, uploads)
        if refusal is not None:
            outcomes[index] = refusal
            continue
        first_in_batch[key] = index
        seq = last_seqs[request.conversation_id] + 1
        last_seqs[request.conversation_id] = seq
        message = Message(
            conversation_id=request.conversation_id,
            seq=seq,
            sender_id=request.sender_id,
            client_msg_id=request.client_msg_id,
            message_type=message_type,
            content=request.content,
        )
        # Routing and the replies name the sender; this spares them a query.
        message.sender = member.user
        message.conversation = with_type[request.conversation_id]
        _attach_reply_and_mentions(message, reply_target, mentionable)
        _cache_attachment(message, uploads.get(request.attachment_id), link=True)
        new_rows.append(message)
        outcomes[index] = SendResult(message, created=True, members=routed.get(request.conversation_id))
    if not new_rows:
        return
    _insert_messages(new_rows)
    _link_attachments(new_rows)
    for index, first in repeats:
        first_result = outcomes[first]
        outcomes[index] = SendResult(first_result.message, created=False, members=first_result.members)  # type: ignore[union-attr]
    last_by_conversation: dict[int, Message] = {}
    read_by_member: dict[int, int] = {}
    for message in new_rows:
        last_by_conversation[message.conversation_id] = message  # rows are in seq order
        # The sender has read what they wrote. Every new seq is above the member's
        # pointers (they never pass last_seq, and the lock is held), so no GREATEST needed.
        read_by_member[members[(message.conversation_id, message.sender_id)].id] = message.seq
    stamps = [connection.ops.adapt_datetimefield_value(m.created_at) for m in last_by_conversation.values()]
    _update_by_id(
        Conversation,
        ("last_seq", "last_message_id", "last_message_preview", "last_message_sender_id", "last_message_at", "updated_at"),
        [
            (conversation_id, (m.seq, m.id, _preview(m), m.sender_id, at, at))
            for (conversation_id, m), at in zip(last_by_conversation.items(), stamps)
        ],
    )
    _update_by_id(
        ConversationMember,
        ("last_read_seq", "last_delivered_seq"),
        [(member_id, (seq, seq)) for member_id, seq in read_by_member.items()],
    )
    _count_mentions(new_rows, mentionable)


# --- replies and mentions (issue 10): batch-wide, and no statement unless needed -----

# "@name" not inside a word or an e-mail address; usernames are letters, digits, _.+-
MENTION_RE = re.compile(r"(?<![\w@.+-])@([\w.+-]+)")


def mentioned_usernames(content: str) -> set[str]:
    """The @names of a text (a trailing '.' ends the sentence, not the name)."""
    if "@" not in content:
        return set()
    return {name.rstrip(".") for name in MENTION_RE.findall(content) if name.rstrip(".")}


def _reply_targets(cleaned: dict[int, SendRequest]) -> dict[int, Message]:
    """The quoted messages of the batch (with their senders, for the preview): one query,
    and none when no request is a reply."""
    ids = {r.reply_to for r in cleaned.values() if r.reply_to}
    if not ids:
        return {}
    return {
        m.id: m
        for m in Message.objects.filter(id__in=ids)
        .select_related("sender")
        .only("id", "conversation_id", "seq", "sender_id", "content", "message_type", "status",
              "sender__id", "sender__username", "sender__nickname")
    }


def _mentionable_members(cleaned: dict[int, SendRequest], group_ids: set[int]) -> dict[tuple[int, str], tuple[int, int]]:
    """{(conversation id, username): (member row id, user id)} of the members named by
    the batch's group messages: one query, and none when no group message has an '@'.
    A name that is not a member of that group resolves to nothing."""
    names: set[str] = set()
    conversations: set[int] = set()
    for request in cleaned.values():
        if request.conversation_id in group_ids:
            found = mentioned_usernames(request.content)  # type: ignore[arg-type]
            if found:
                names |= found
                conversations.add(request.conversation_id)  # type: ignore[arg-type]
    if not names:
        return {}
    rows = ConversationMember.objects.filter(
        conversation_id__in=conversations, user__username__in=names
    ).values_list("conversation_id", "user__username", "id", "user_id")
    return {(cid, name): (member_id, user_id) for cid, name, member_id, user_id in rows}


def _attach_reply_and_mentions(
    message: Message, reply_target: Message | None, mentionable: dict[tuple[int, str], tuple[int, int]]
) -> None:
    if reply_target is not None:
        message.reply_to = reply_target  # loaded: previews need no query
    if mentionable:
        ids = {
            mentionable[(message.conversation_id, name)][1]
            for name in mentioned_usernames(message.content)
            if (message.conversation_id, name) in mentionable
        }
        if ids:
            message.mentions = sorted(ids)


def _count_mentions(new_rows: Sequence[Message], mentionable: dict[tuple[int, str], tuple[int, int]]) -> None:
    """Add each stored message to its mentioned members' badge (not the sender's own):
    one UPDATE for the batch, none without mentions."""
    if not mentionable:
        return
    member_of = {(cid, user_id): member_id for (cid, _), (member_id, user_id) in mentionable.items()}
    added: dict[int, int] = {}
    for message in new_rows:
        for user_id in message.mentions or ():
            if user_id != message.sender_id:
                member_id = member_of[(message.conversation_id, user_id)]
                added[member_id] = added.get(member_id, 0) + 1
    if added:
        ConversationMember.objects.filter(id__in=list(added)).update(
            unread_mentions=F("unread_mentions")
            + Case(*(When(id=member_id, then=Value(n)) for member_id, n in added.items()), default=Value(0))
        )


# --- attachments on send (issue 10): one locking read and one UPDATE per batch, only when
# some request names an upload -------------------------------------------------------------

def _clean_attachment_id(value: object) -> int | None:
    if value is None or value == "" or value == 0:
        return None
    if not isinstance(value, bool) and isinstance(value, (int, str)):
        text = str(value).strip()
        if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
            return int(text)
    raise InvalidParams("invalid attachment_id", {"attachment_id": ["A valid id is required."]})


def _lock_attachments(cleaned: dict[int, SendRequest]) -> dict[int, Attachment]:
    """The uploads the batch names, locked (in id order, after the conversations) so that
    two sends of one upload, or a send and the orphan sweep, cannot both take it."""
    ids = {r.attachment_id for r in cleaned.values() if r.attachment_id is not None}
    if not ids:
        return {}
    return {a.id: a for a in Attachment.objects.select_for_update().filter(id__in=ids).order_by("id")}


def _check_attachment(request: SendRequest, uploads: dict[int, Attachment]) -> tuple[GoChatError | None, str]:
    """(refusal or None, the message type to store) for one new message."""
    if request.attachment_id is None:
        return None, request.message_type  # type: ignore[return-value]
    upload = uploads.get(request.attachment_id)  # type: ignore[arg-type]
    if upload is None or upload.uploader_id != request.sender_id:
        # Another user's upload is refused like an unknown one: ids are not secrets, files are.
        return InvalidParams("unknown attachment", {"attachment_id": ["No upload of yours has this id."]}), ""
    if upload.message_id is not None:
        return InvalidParams("attachment already sent", {"attachment_id": ["Already attached to a message."]}), ""
    message_type = request.message_type or attachments.default_message_type(upload.content_type)
    if not attachments.message_type_fits(message_type, upload.content_type):  # type: ignore[arg-type]
        return InvalidParams(
            "message_type does not fit the attachment",
            {"message_type": [f"A {upload.content_type} upload is sent as "
                              f"{attachments.default_message_type(upload.content_type)} or file."]},
        ), ""
    return None, message_type  # type: ignore[return-value]


def _cache_attachment(message: Message, upload: Attachment | None, *, link: bool) -> None:
    """Put the upload on the message (representations and envelopes read it from there,
    never with a query); link=True claims it for this new message."""
    if upload is None or (not link and upload.message_id != message.id):
        return
    if link:
        upload.message = message
    Message.attachment.related.set_cached_value(message, upload)


def _link_attachments(new_rows: Sequence[Message]) -> None:
    rel = Message.attachment.related
    rows = [(rel.get_cached_value(m).id, (m.id,)) for m in new_rows if rel.is_cached(m)]
    if rows:
        _update_by_id(Attachment, ("message_id",), rows)


def _preview(message: Message) -> str:
    if message.content:
        return message.content[:PREVIEW_LENGTH]
    rel = Message.attachment.related
    if rel.is_cached(message) and rel.get_cached_value(message) is not None:
        return f"[{message.message_type}] {rel.get_cached_value(message).name}"[:PREVIEW_LENGTH]
    return ""


def _insert_messages(messages: Sequence[Message]) -> None:
    """Multi-row INSERT of new Message instances (ids and defaults already set by the
    model), split only by the backend's parameter limit, as bulk_create would.

    Each field's value goes through the field as bulk_create sends it (pre_save: the
    auto_now_add stamp; get_db_prep_save: datetimes and JSON adapted), except the fields
    whose attribute already is the database value (integers, text), which were most of
    the insert's CPU."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = Message._meta.concrete_fields
    prepared = [(field, _needs_prep(field)) for field in fields]
    rows = []
    for message in messages:
        rows.append([
            field.get_db_prep_save(field.pre_save(message, True), db) if needs_prep else getattr(message, field.attname)
            for field, needs_prep in prepared
        ])
        message._state.adding = False
        message._state.db = db.alias
    insert = f"INSERT INTO {db.ops.quote_name(Message._meta.db_table)} ({', '.join(db.ops.quote_name(f.column) for f in fields)})"
    if db.vendor == "postgresql" and len(rows) >= UNNEST_MIN_ROWS:
        # One array per column through unnest(): the statement's text is the same for
        # every large batch, so psycopg parses it once (a VALUES list per row changes it
        # with the batch size, and parsing a 200-row text was the logic's largest
        # psycopg cost: a 200-row batch 66 -> 29 ms). PostgreSQL itself runs the unnest
        # form ~0.9 ms slower, which only a large batch repays; small batches keep
        # VALUES, whose few texts stay in psycopg's cache.
        casts = ", ".join(f"%s::{field.db_type(db)}[]" for field in fields)
        with hot_sql.cursor() as cursor:
            cursor.execute(f"{insert} SELECT * FROM unnest({casts})", [list(column) for column in zip(*rows)])
        return
    per_statement = db.ops.bulk_batch_size(fields, messages) or len(rows)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        with hot_sql.cursor() as cursor:
            cursor.execute(f"{insert} VALUES {', '.join([placeholders] * len(chunk))}",
                           [value for row in chunk for value in row])


# From this many rows a PostgreSQL insert goes through unnest() (see _insert_messages).
UNNEST_MIN_ROWS = 32


def _needs_prep(field: Field) -> bool:
    """Whether a Message field's value must go through the field before the database:
    anything but a plain integer or text column (and its foreign keys) does."""
    if field.is_relation:
        field = field.target_field
    plain = (models.BigIntegerField, models.IntegerField, models.CharField, models.TextField)
    return not isinstance(field, plain) or bool(getattr(field, "auto_now_add", False))


def _update_by_id(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[int, Sequence[object]]]
) -> None:
    """One UPDATE setting `columns` (field names or attnames) of each row id to its own
    values. QuerySet.bulk_update builds such a statement through expressions, which cost
    ~45% of the logic's CPU under load; this builds it as text, values as parameters.

    On PostgreSQL the values go as one array per column through unnest(), so the text is
    the same whatever the number of rows and stays prepared (hot_sql.cursor); elsewhere
    it is CASE id WHEN ... per column, in chunks."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _update_unnest(model, columns, rows)
        return
    for start in range(0, len(rows), UPDATE_CHUNK_ROWS):
        _update_chunk(model._meta.db_table, columns, rows[start : start + UPDATE_CHUNK_ROWS])


# Rows per UPDATE statement: keeps the parameters (2 per column and row, +1 per row) well
# under SQLite's limit.
UPDATE_CHUNK_ROWS = 1000


def _update_unnest(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[int, Sequence[object]]]
) -> None:
    if len(rows) == 1:
        # One row (every batch at one message in flight): plain parameters. Arrays cost
        # psycopg a type scan and a dump per column (~20% of a batch of one's CPU).
        row_id, values = rows[0]
        with hot_sql.cursor() as cursor:
            cursor.execute(_update_one_sql(model, tuple(columns)), [*values, row_id])
        return
    params: list[list[object]] = [[row_id for row_id, _ in rows]]
    params.extend([values[position] for _, values in rows] for position in range(len(columns)))
    with hot_sql.cursor() as cursor:
        cursor.execute(_update_unnest_sql(model, tuple(columns)), params)


@functools.cache
def _update_unnest_sql(model: type[models.Model], columns: tuple[str, ...]) -> str:
    """UPDATE ... FROM unnest(one array per column) (PostgreSQL; built once per shape)."""
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(column) for column in columns]
    pk = model._meta.pk
    names = [f"v{position}" for position in range(len(fields))]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [pk, *fields])
    assignments = ", ".join(f"{qn(field.column)} = v.{name}" for field, name in zip(fields, names))
    return (
        f"UPDATE {qn(model._meta.db_table)} AS t SET {assignments}"
        f" FROM unnest({arrays}) AS v(id, {', '.join(names)}) WHERE t.{qn(pk.column)} = v.id"
    )


@functools.cache
def _update_one_sql(model: type[models.Model], columns: tuple[str, ...]) -> str:
    """UPDATE of one row by id (PostgreSQL; built once per shape)."""
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(column) for column in columns]
    assignments = ", ".join(f"{qn(field.column)} = %s" for field in fields)
    return f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {qn(model._meta.pk.column)} = %s"


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
    with hot_sql.cursor() as cursor:
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
            # Both now see each other's presence changes (issue 11 presence push).
            presence_push.forget_watchers_on_commit([int(user_id), peer_id])
    except IntegrityError:
        return Conversation.objects.get(pair_key=key), False
    return conversation, True


def mark_read(*, user_id: int, conversation_id: int, seq: int) -> int:
    """Move the reader's last_read_seq forward (never back, never past last_seq)."""
    return read_conversation(user_id=user_id, conversation_id=conversation_id, seq=seq).last_read_seq


@dataclass(frozen=True)
class ReadResult:
    """What a read did, for routing: the READ frame to the reader's devices, and the
    receipt to the other members only when the pointer moved (routing.publish_read)."""

    user_id: int
    conversation_id: int
    last_read_seq: int
    moved: bool
    conversation_type: str
    # Members of the conversation (2 for a single chat): bounds the receipt fan-out.
    member_count: int
    send_read_receipts: bool


def read_conversation(*, user_id: int, conversation_id: int, seq: int) -> ReadResult:
    """mark_read, telling whether the pointer moved and what routing needs to know.

    The pointer moves with one conditional UPDATE (WHERE last_read_seq < target): of two
    reads racing to the same seq exactly one sees a row changed, so one receipt is sent."""
    try:
        seq = int(seq)
    except (TypeError, ValueError):
        raise InvalidParams("invalid seq", {"seq": ["An integer is required."]}) from None
    if seq < 0:
        raise InvalidParams("invalid seq", {"seq": ["Must be >= 0."]})
    member = _member_or_raise(
        user_id=user_id,
        conversation_id=conversation_id,
        related=("conversation", "conversation__group", "user"),
    )
    conversation = member.conversation
    target = min(seq, conversation.last_seq)
    moved = bool(
        ConversationMember.objects.filter(id=member.id, last_read_seq__lt=target).update(last_read_seq=target)
    )
    if moved:
        last_read = target
    else:
        last_read = ConversationMember.objects.filter(id=member.id).values_list("last_read_seq", flat=True).get()
    if member.unread_mentions:
        _recount_mentions(member, last_read=last_read)
    group = conversation.group
    return ReadResult(
        user_id=int(user_id),
        conversation_id=conversation.id,
        last_read_seq=last_read,
        moved=moved,
        conversation_type=conversation.type,
        member_count=group.member_count if group is not None else 2,
        send_read_receipts=member.user.send_read_receipts,
    )


def _recount_mentions(member: ConversationMember, *, last_read: int) -> None:
    """The mention badge after a read: the messages after last_read_seq that mention the
    member. Only runs while the badge is non-zero, and reads only the unread messages that
    mention someone (mentions IS NULL for the rest), so it is bounded by the unread count."""
    rows = Message.objects.filter(
        conversation_id=member.conversation_id, seq__gt=last_read, mentions__isnull=False
    ).values_list("mentions", "sender_id")
    count = sum(1 for ids, sender_id in rows if member.user_id in ids and sender_id != member.user_id)
    ConversationMember.objects.filter(id=member.id).update(unread_mentions=count)


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


def _member_or_raise(*, user_id: int, conversation_id: int, related: Sequence[str] = ()) -> ConversationMember:
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        raise InvalidParams("invalid conversation_id") from None
    rows = ConversationMember.objects.filter(conversation_id=conversation_id, user_id=user_id)
    if related:
        rows = rows.select_related(*related)
    member = rows.first()
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


# --- attachments (issue 10) ----------------------------------------------------------------

class UploadTooLarge(InvalidParams):
    """An upload over UPLOAD_MAX_BYTES: 1001 with details.max_bytes, answered 413 on REST."""

    http_status = 413

    def __init__(self) -> None:
        super().__init__("file too large", {"max_bytes": settings.UPLOAD_MAX_BYTES})


def upload_attachment(*, uploader_id: int, file: object) -> Attachment:
    """Store one uploaded file (a Django UploadedFile) and record it, not yet linked to a
    message. The type is what the bytes are (magic bytes, Pillow for images), and must be
    in UPLOAD_ALLOWED_TYPES; a name or declared type claiming an image, audio or video the
    bytes are not is refused. Images get their dimensions and a thumbnail."""
    if file is None or not hasattr(file, "read"):
        raise InvalidParams("file required", {"file": ["A file is required (multipart field 'file')."]})
    size = int(getattr(file, "size", 0) or 0)
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge()
    if size == 0:
        raise InvalidParams("empty file", {"file": ["The file is empty."]})
    name = attachments.clean_name(getattr(file, "name", ""))
    file.seek(0)
    head = file.read(attachments.SNIFF_BYTES)
    content_type = attachments.detect_content_type(head)
    if not attachments.type_allowed(content_type):
        raise InvalidParams(
            "file type not allowed",
            {"file": [f"{content_type} is not accepted."], "allowed_types": list(settings.UPLOAD_ALLOWED_TYPES)},
        )
    claimed = attachments.claimed_family(name, getattr(file, "content_type", None))
    if claimed is not None and not content_type.startswith(claimed):
        raise InvalidParams(
            "file content does not match its name",
            {"file": [f"The name or declared type says {claimed}*, the content is {content_type}."]},
        )
    info = attachments.image_info(file) if content_type in attachments.MEASURABLE_IMAGES else None
    attachment = Attachment(uploader_id=uploader_id, name=name, size=size, content_type=content_type)
    if info is not None:
        attachment.width, attachment.height = info.width, info.height
    file_name, thumb_stem = attachments.storage_names(attachment.id, content_type, timezone.now())
    file.seek(0)
    attachment.storage_name = attachments.save(file_name, file)
    try:
        if info is not None:
            attachment.thumbnail_name = attachments.save(f"{thumb_stem}.{info.thumbnail_ext}", info.thumbnail)
        attachment.save(force_insert=True)
    except BaseException:
        attachments.delete_files(attachment.storage_name, attachment.thumbnail_name)
        raise
    logger.info(
        "attachment_uploaded",
        extra={"attachment_id": attachment.id, "uploader_id": uploader_id, "size": size, "content_type": content_type},
    )
    return attachment


def sweep_orphan_attachments(*, older_than_seconds: int, batch_size: int = 200) -> int:
    """Delete uploads never attached to a message (or whose message was deleted) created
    more than `older_than_seconds` ago, files first; return how many. Idempotent: a file
    already gone is no error, and a row whose commit failed is swept next time."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    total = 0
    while True:
        with transaction.atomic():
            # Locked, skipping rows a send holds: that send either links the row (and it is
            # no orphan) or gives it up, and a later sweep sees it then.
            rows = list(
                Attachment.objects.select_for_update(skip_locked=True)
                .filter(message__isnull=True, created_at__lt=cutoff)
                .order_by("id")
                .values_list("id", "storage_name", "thumbnail_name")[:batch_size]
            )
            if not rows:
                break
            for _, storage_name, thumbnail_name in rows:
                attachments.delete_files(storage_name, thumbnail_name)
            Attachment.objects.filter(id__in=[row[0] for row in rows]).delete()
        total += len(rows)
        if len(rows) < batch_size:
            break
    if total:
        logger.info("attachments_swept", extra={"attachments": total, "older_than_seconds": older_than_seconds})
    return total


def discard_message_attachments(*, message_ids: Sequence[int]) -> int:
    """Unlink the attachments of these messages (e.g. recalled ones) and delete their
    files once the caller's transaction commits; return how many."""
    rows = list(Attachment.objects.filter(message_id__in=list(message_ids)).values_list("id", "storage_name", "thumbnail_name"))
    if not rows:
        return 0
    Attachment.objects.filter(id__in=[row[0] for row in rows]).delete()
    names = [name for _, storage_name, thumb in rows for name in (storage_name, thumb)]
    transaction.on_commit(lambda: attachments.delete_files(*names))
    return len(rows)
