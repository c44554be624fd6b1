"""Reads of the messaging app: membership, history, unread counts, conversation lists."""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Case, Count, Exists, F, IntegerField, Max, OuterRef, Q, When

from gochat_site.errors import InvalidParams, NotAMember, NotFound, PermissionDenied
from messaging.models import (
    Attachment,
    Conversation,
    ConversationMember,
    Device,
    HiddenMessage,
    Message,
    MessageReaction,
)
from messaging import hot_sql
from messaging.presence import get_presence

User = get_user_model()


def access_membership(*, user_id: int, conversation_id: object) -> ConversationMember:
    """The caller's membership row, or NotFound (no such conversation) / NotAMember (1005)."""
    try:
        conversation_id = int(conversation_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParams("invalid conversation_id", {"conversation_id": ["A valid id is required."]}) from None
    member = (
        ConversationMember.objects.select_related("conversation", "conversation__group")
        .filter(conversation_id=conversation_id, user_id=user_id)
        .first()
    )
    if member is None:
        if not Conversation.objects.filter(id=conversation_id).exists():
            raise NotFound("conversation not found")
        raise NotAMember()
    return member


def member_user_ids(*, conversation_id: int) -> list[int]:
    return list(ConversationMember.objects.filter(conversation_id=conversation_id).values_list("user_id", flat=True))


def members_of_conversations(*, conversation_ids: list[int]) -> dict[int, dict[int, bool]]:
    """{conversation id: {member user id: muted}} for several conversations in one query
    (routing a consumed batch reads its conversations' members together)."""
    members: dict[int, dict[int, bool]] = {conversation_id: {} for conversation_id in conversation_ids}
    for conversation_id, user_id, muted in hot_sql.member_flags(conversation_ids):
        members[conversation_id][user_id] = muted
    return members


def member_count(*, conversation_id: int) -> int:
    return ConversationMember.objects.filter(conversation_id=conversation_id).count()


def member_ids_batches(*, conversation_id: int, batch_size: int = 200, after_user_id: int = 0):
    """Yield (member user ids, last id) in keyset-ordered batches; memory stays flat."""
    cursor = after_user_id
    while True:
        ids = list(
            ConversationMember.objects.filter(conversation_id=conversation_id, user_id__gt=cursor)
            .order_by("user_id")
            .values_list("user_id", flat=True)[:batch_size]
        )
        if not ids:
            return
        cursor = ids[-1]
        yield ids, cursor


@dataclass
class HistoryPage:
    messages: list[Message]
    has_more: bool
    # Group conversations: message id -> read_count (read_counts_for); None for single chats.
    read_counts: dict[int, int] | None = None
    # Seqs inside this page's range that the caller hid (delete-for-me): left out of
    # `messages` but listed, so the client counts them as known and sees no gap.
    hidden_seqs: list[int] = field(default_factory=list)


def reaction_counts(*, message_ids: list[int], viewer_id: int | None = None) -> dict[int, list[dict]]:
    """{message id: [{"emoji", "count", "me"?}]} for a page of messages in ONE aggregate
    query (never one per message); "me" is given when the viewer is known. Most used
    emoji first."""
    if not message_ids:
        return {}
    rows = MessageReaction.objects.filter(message_id__in=message_ids).values("message_id", "emoji").order_by()
    if viewer_id is not None:
        rows = rows.annotate(
            count=Count("id"),
            me=Max(Case(When(user_id=viewer_id, then=1), default=0, output_field=IntegerField())),
        )
    else:
        rows = rows.annotate(count=Count("id"))
    counts: dict[int, list[dict]] = {}
    for row in rows:
        entry = {"emoji": row["emoji"], "count": row["count"]}
        if viewer_id is not None:
            entry["me"] = bool(row["me"])
        counts.setdefault(row["message_id"], []).append(entry)
    for entries in counts.values():
        entries.sort(key=lambda e: (-e["count"], e["emoji"]))
    return counts


def attach_reactions(messages: list[Message], *, viewer_id: int | None = None) -> list[Message]:
    """Set `reaction_counts` on each message (read by the JSON and protobuf shapes)."""
    counts = reaction_counts(message_ids=[m.id for m in messages], viewer_id=viewer_id)
    for message in messages:
        message.reaction_counts = counts.get(message.id, [])
    return messages


def _visible(rows: list[Message], page: HistoryPage) -> HistoryPage:
    page.hidden_seqs = [m.seq for m in rows if m.hidden]
    page.messages = [m for m in rows if not m.hidden]
    return page


def _clean_int(value: object, name: str, minimum: int = 0) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParams(f"invalid {name}", {name: ["An integer is required."]}) from None
    if number < minimum:
        raise InvalidParams(f"invalid {name}", {name: [f"Must be >= {minimum}."]})
    return number


def conversation_history(
    *, user_id: int, conversation_id: object, before_seq: object = None, after_seq: object = None, limit: object = None
) -> HistoryPage:
    """Messages of one conversation, in ascending seq order.

    after_seq: the next page forward (seq > after_seq) — used by sync and gap pulls.
    before_seq: the previous page backward (seq < before_seq) — used to scroll up.
    Both: the window between them, paged forward from after_seq (a gap of known ends).
    Neither: the newest page.
    """
    member = access_membership(user_id=user_id, conversation_id=conversation_id)
    before = _clean_int(before_seq, "before_seq", 1)
    after = _clean_int(after_seq, "after_seq", 0)
    size = _clean_int(limit, "limit", 1) or 50
    size = min(size, settings.HISTORY_MAX_LIMIT)
    # Hidden (delete-for-me) rows come in the same query, flagged, so the page still
    # covers a contiguous seq range: the flag splits them out into hidden_seqs. The
    # quoted messages of replies come in the same query too (a join), not one per message.
    base = (
        Message.objects.filter(conversation_id=member.conversation_id)
        .select_related("sender", "reply_to", "reply_to__sender")
        .annotate(hidden=Exists(HiddenMessage.objects.filter(user_id=user_id, message_id=OuterRef("id"))))
    )
    if before is not None:
        base = base.filter(seq__lt=before)
    if after is not None:
        rows = list(base.filter(seq__gt=after).order_by("seq")[: size + 1])
        page = _visible(rows[:size], HistoryPage([], has_more=len(rows) > size))
    else:
        rows = list(base.order_by("-seq")[: size + 1])
        window = rows[:size]
        window.reverse()
        page = _visible(window, HistoryPage([], has_more=len(rows) > size))
    with_attachments(page.messages)
    attach_reactions(page.messages, viewer_id=user_id)
    return _with_read_counts(member, page)


def _with_read_counts(member: ConversationMember, page: HistoryPage) -> HistoryPage:
    if member.conversation.type == Conversation.Type.GROUP and page.messages:
        page.read_counts = read_counts_for(conversation_id=member.conversation_id, messages=page.messages)
    return page


def read_counts_for(*, conversation_id: int, messages: list[Message]) -> dict[int, int]:
    """read_count of each message: members other than its sender whose last_read_seq >=
    its seq, members with receipts off not counted.

    One query for the page, whatever its size: the members' read pointers (receipts on),
    sorted once; each message is then a binary search. Never a row per message read."""
    pointers = dict(
        ConversationMember.objects.filter(conversation_id=conversation_id, user__send_read_receipts=True).values_list(
            "user_id", "last_read_seq"
        )
    )
    ordered = sorted(pointers.values())
    counts: dict[int, int] = {}
    for message in messages:
        count = len(ordered) - bisect_left(ordered, message.seq)
        own = pointers.get(message.sender_id)
        if own is not None and own >= message.seq:
            count -= 1  # the sender has read what they wrote; they are not a reader
        counts[message.id] = count
    return counts


RECEIPTS_DEFAULT_LIMIT = 200
RECEIPTS_MAX_LIMIT = 1000


@dataclass
class ReceiptsPage:
    members: list[tuple[int, int]]  # (user id, last_read_seq), by user id
    next_after: int | None


def conversation_receipts(
    *, user_id: int, conversation_id: object, after: object = None, limit: object = None
) -> ReceiptsPage:
    """The read pointers of a conversation's members who send receipts (the caller must
    be a member), keyset-paged by user id: works for groups of any size."""
    member = access_membership(user_id=user_id, conversation_id=conversation_id)
    cursor = _clean_int(after, "after", 0) or 0
    size = min(_clean_int(limit, "limit", 1) or RECEIPTS_DEFAULT_LIMIT, RECEIPTS_MAX_LIMIT)
    rows = list(
        ConversationMember.objects.filter(
            conversation_id=member.conversation_id, user__send_read_receipts=True, user_id__gt=cursor
        )
        .order_by("user_id")
        .values_list("user_id", "last_read_seq")[: size + 1]
    )
    page = rows[:size]
    return ReceiptsPage(members=page, next_after=page[-1][0] if len(rows) > size else None)


def messages_after(*, user_id: int, conversation_id: object, after_seq: object, limit: object = None) -> HistoryPage:
    return conversation_history(user_id=user_id, conversation_id=conversation_id, after_seq=after_seq or 0, limit=limit)


def unread_counts(*, user_id: int) -> list[dict]:
    """Unread per conversation = last_seq - last_read_seq: no COUNT over messages."""
    rows = (
        ConversationMember.objects.filter(user_id=user_id)
        .annotate(unread=F("conversation__last_seq") - F("last_read_seq"))
        .filter(unread__gt=0)
        .values("conversation_id", "unread", "last_read_seq", "conversation__last_seq")
    )
    return [
        {
            "conversation_id": r["conversation_id"],
            "unread": r["unread"],
            "last_read_seq": r["last_read_seq"],
            "last_seq": r["conversation__last_seq"],
        }
        for r in rows
    ]


@dataclass
class ConversationSummary:
    membership: ConversationMember
    conversation: Conversation
    unread: int
    title: str
    peer: object | None  # the other user of a single chat
    group: object | None
    peer_online: bool = False  # the peer has a live socket (presence)
    # Single chats: how far the peer has read, None if they turned receipts off.
    peer_last_read_seq: int | None = None


def _summaries(user_id: int, members: list[ConversationMember]) -> list[ConversationSummary]:
    single_ids = [m.conversation_id for m in members if m.conversation.type == Conversation.Type.SINGLE]
    peers: dict[int, object] = {}
    peer_reads: dict[int, int | None] = {}
    if single_ids:
        for other in (
            ConversationMember.objects.filter(conversation_id__in=single_ids)
            .filter(~Q(user_id=user_id))
            .select_related("user")
        ):
            peers[other.conversation_id] = other.user
            # The same row: the peer's read pointer costs no query.
            peer_reads[other.conversation_id] = other.last_read_seq if other.user.send_read_receipts else None
    # One batched presence lookup for every peer on the page.
    online = get_presence().lookup([p.id for p in peers.values()]) if peers else {}
    summaries = []
    for m in members:
        conv = m.conversation
        peer = peers.get(conv.id)
        if conv.type == Conversation.Type.GROUP and conv.group is not None:
            title = conv.group.name
        else:
            title = getattr(peer, "display_name", "") or "(deleted user)"
        summaries.append(
            ConversationSummary(
                membership=m,
                conversation=conv,
                unread=max(conv.last_seq - m.last_read_seq, 0),
                title=title,
                peer=peer,
                group=conv.group,
                peer_online=peer is not None and bool(online.get(peer.id)),
                peer_last_read_seq=peer_reads.get(conv.id),
            )
        )
    return summaries


def conversations_for_user(*, user_id: int, limit: int = 200) -> list[ConversationSummary]:
    """The caller's conversations, newest activity first, each with unread and title."""
    members = list(
        ConversationMember.objects.filter(user_id=user_id)
        .select_related("conversation", "conversation__group")
        .order_by(F("conversation__last_message_at").desc(nulls_last=True), "-conversation__created_at")[:limit]
    )
    return _summaries(user_id, members)


def conversation_summary(*, user_id: int, conversation_id: object) -> ConversationSummary:
    member = access_membership(user_id=user_id, conversation_id=conversation_id)
    return _summaries(user_id, [member])[0]


def devices_of_user(*, user_id: int) -> list[Device]:
    """The caller's push devices, most recently seen first."""
    return list(Device.objects.filter(user_id=user_id).order_by("-last_seen", "-id"))


def messages_by_ids(*, message_ids: list[int]) -> dict[int, Message]:
    """Messages by id with their senders (for internal services; no membership check)."""
    return {m.id: m for m in Message.objects.filter(id__in=message_ids).select_related("sender")}


def conversation_by_id(*, conversation_id: int) -> Conversation:
    """One conversation with its group (for internal services; no membership check)."""
    conversation = Conversation.objects.select_related("group").filter(id=conversation_id).first()
    if conversation is None:
        raise NotFound("conversation not found")
    return conversation


def presence_watchers(*, user_ids: list[int], max_group_size: int) -> dict[int, set[int]]:
    """{user id: the other users who share a conversation with them}, for presence push:
    every single chat, and groups of at most `max_group_size` members (a change is not
    worth a frame to thousands). Two queries for the whole batch of users."""
    watchers: dict[int, set[int]] = {int(u): set() for u in user_ids}
    if not watchers:
        return watchers
    rows = (
        ConversationMember.objects.filter(user_id__in=list(watchers))
        .filter(
            Q(conversation__type=Conversation.Type.SINGLE)
            | Q(conversation__group__member_count__lte=max_group_size)
        )
        .values_list("conversation_id", "user_id")
    )
    users_of: dict[int, list[int]] = {}
    for conversation_id, user_id in rows:
        users_of.setdefault(conversation_id, []).append(user_id)
    if not users_of:
        return watchers
    for conversation_id, other_id in ConversationMember.objects.filter(conversation_id__in=list(users_of)).values_list(
        "conversation_id", "user_id"
    ):
        for user_id in users_of[conversation_id]:
            if other_id != user_id:
                watchers[user_id].add(other_id)
    return watchers


# --- attachments (issue 10) ----------------------------------------------------------------

# Only these message types can carry an attachment (services._check_attachment).
ATTACHMENT_MESSAGE_TYPES = frozenset({Message.Type.IMAGE, Message.Type.FILE, Message.Type.AUDIO, Message.Type.VIDEO})


def with_attachments(messages: list[Message]) -> list[Message]:
    """Put each message's attachment (or None) on it, in one query for the page, and in
    none when the page has only text: representations read it without a query."""
    carriers = [m for m in messages if m.message_type in ATTACHMENT_MESSAGE_TYPES]
    if carriers:
        found = {a.message_id: a for a in Attachment.objects.filter(message_id__in=[m.id for m in carriers])}
        rel = Message.attachment.related
        for message in carriers:
            rel.set_cached_value(message, found.get(message.id))
    return messages


def access_attachment(*, user_id: int, attachment_id: int) -> Attachment:
    """An attachment the caller may fetch: their own upload (sent or not), or one sent in
    a conversation they are a member of. NotFound / PermissionDenied (1005) otherwise."""
    attachment = Attachment.objects.select_related("message").filter(id=attachment_id).first()
    if attachment is None:
        raise NotFound("attachment not found")
    if attachment.uploader_id == user_id:
        return attachment
    if attachment.message_id is None:
        raise PermissionDenied("not your upload")
    if not ConversationMember.objects.filter(
        conversation_id=attachment.message.conversation_id, user_id=user_id
    ).exists():
        raise NotAMember()
    return attachment


def attachment_by_id(*, attachment_id: int) -> Attachment:
    """One attachment, no permission check (the signed URL was the check)."""
    attachment = Attachment.objects.filter(id=attachment_id).first()
    if attachment is None:
        raise NotFound("attachment not found")
    return attachment
