"""Reads of the messaging app: membership, history, unread counts, conversation lists."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Q

from gochat_site.errors import InvalidParams, NotAMember, NotFound
from messaging.models import Conversation, ConversationMember, Device, Message
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
    rows = ConversationMember.objects.filter(conversation_id__in=conversation_ids).values_list(
        "conversation_id", "user_id", "muted"
    )
    for conversation_id, user_id, muted in rows:
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
    base = Message.objects.filter(conversation_id=member.conversation_id).select_related("sender")
    if before is not None:
        base = base.filter(seq__lt=before)
    if after is not None:
        rows = list(base.filter(seq__gt=after).order_by("seq")[: size + 1])
        return HistoryPage(rows[:size], has_more=len(rows) > size)
    rows = list(base.order_by("-seq")[: size + 1])
    page = rows[:size]
    page.reverse()
    return HistoryPage(page, has_more=len(rows) > size)


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


def _summaries(user_id: int, members: list[ConversationMember]) -> list[ConversationSummary]:
    single_ids = [m.conversation_id for m in members if m.conversation.type == Conversation.Type.SINGLE]
    peers: dict[int, object] = {}
    if single_ids:
        for other in (
            ConversationMember.objects.filter(conversation_id__in=single_ids)
            .filter(~Q(user_id=user_id))
            .select_related("user")
        ):
            peers[other.conversation_id] = other.user
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
