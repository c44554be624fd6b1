"""Routing of a persisted message to the gateways that hold its recipients' sockets.

Presence is looked up in batches; each target gateway gets ONE DownstreamMessage carrying
all its recipient ids (multicast), never one envelope per recipient. Groups above
LARGE_GROUP_THRESHOLD are handed to the Celery fan-out task, which calls
deliver_to_users() batch by batch. Producing does not flush: the caller flushes once per
batch (the logic loop before committing offsets), or passes flush=True.

route_messages() routes a whole consume batch at once: the members and muted flags of all
its conversations are read in one query and the presence of the union of all recipients is looked up
once (in PRESENCE_BATCH_SIZE chunks), instead of once per message.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from gochat_site import tracing
from gochat_site.tasks_client import enqueue_task
from messaging import cache, delivery_trace, hot_sql, presence_push
from messaging.bus import downstream_topic, get_producer
from messaging.gateway.envelopes import chat_message_from_model
from messaging.models import Conversation, Message
from messaging.presence import get_presence
from messaging.representations import loaded_sender_name
from messaging.selectors import member_ids_batches, members_of_conversations, reaction_counts, with_attachments
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)


def _sender_name(message: Message) -> str:
    name = loaded_sender_name(message)
    if name or "sender" in message._state.fields_cache:
        return name
    from django.contrib.auth import get_user_model

    sender = get_user_model().objects.filter(id=message.sender_id).only("username", "nickname").first()
    return sender.display_name if sender is not None else ""


def _produce(topic: str, envelope: pb.DownstreamMessage) -> None:
    headers = {"trace_id": envelope.trace_id} if envelope.trace_id else {}
    get_producer().produce(topic, envelope.SerializeToString(), headers=headers)


Sessions = dict[int, dict[str, str]]  # user id -> {connection id: gateway id}


def recipients_by_gateway(sessions: Sessions) -> dict[str, list[int]]:
    """{gateway id: the users with a live socket there}: one envelope per gateway."""
    by_gateway: dict[str, list[int]] = {}
    for user_id, connections in sessions.items():
        for gateway_id in set(connections.values()):
            by_gateway.setdefault(gateway_id, []).append(user_id)
    return by_gateway


def produce_downstream(gateway_id: str, envelope: pb.DownstreamMessage) -> None:
    """Queue one envelope on a gateway's downstream topic (the caller flushes)."""
    _produce(downstream_topic(gateway_id), envelope)


def _lookup(user_ids: Iterable[int]) -> Sessions:
    """Live connections of `user_ids`: one presence round trip per PRESENCE_BATCH_SIZE users."""
    ids = list(dict.fromkeys(int(u) for u in user_ids))
    presence = get_presence()
    batch = max(1, settings.PRESENCE_BATCH_SIZE)
    sessions: Sessions = {}
    for start in range(0, len(ids), batch):
        sessions.update(presence.lookup(ids[start : start + batch]))
    return sessions


def _deliver(
    message: Message,
    ids: list[int],
    sessions: Sessions,
    *,
    muted: set[int] | None,
    sender_name: str | None,
    trace_id: str,
    skip_connection_id: str,
    received_at_ms: int,
) -> list[int]:
    """Produce one envelope per gateway for `message` from already looked-up `sessions`
    and enqueue the offline push; returns the ids without a live connection. `muted` and
    `sender_name` are read here when the caller has not got them yet (None)."""
    by_gateway: dict[str, list[int]] = {}
    offline: list[int] = []
    for user_id in ids:
        connections = sessions.get(user_id)
        if not connections:
            offline.append(user_id)
            continue
        # The sending socket already has the message (send-ack); its other devices do not.
        targets = {gw for conn, gw in connections.items() if conn != skip_connection_id}
        for gateway_id in targets:
            by_gateway.setdefault(gateway_id, []).append(user_id)
    if by_gateway:
        name = sender_name if sender_name is not None else _sender_name(message)
        chat = chat_message_from_model(message, sender_name=name)
        for gateway_id, recipients in by_gateway.items():
            envelope = pb.DownstreamMessage(
                trace_id=trace_id,
                kind=pb.DownstreamMessage.NEW_MESSAGE,
                recipient_user_ids=recipients,
                message=chat,
                connection_id=skip_connection_id,
                received_at_ms=received_at_ms,
            )
            _produce(downstream_topic(gateway_id), envelope)
    push_ids = offline
    if offline:
        if muted is None:
            muted = cache.muted_user_ids(message.conversation_id)
        # A member who muted the conversation is still told when @mentioned.
        mentioned = set(message.mentions or ())
        push_ids = [u for u in offline if u != message.sender_id and (u not in muted or u in mentioned)]
    if push_ids:
        enqueue_task("tasks.offline_push", message_id=message.id, user_ids=push_ids)
    delivery_trace.record(
        "routed",
        trace_id=trace_id,
        message_id=message.id,
        gateways={gateway_id: len(recipients) for gateway_id, recipients in by_gateway.items()},
        recipients=len(ids),
        offline=len(offline),
        push=len(push_ids),
    )
    # Debug: an INFO line per message cost more than the routing itself under load.
    logger.debug(
        "message_routed",
        extra={
            "message_id": message.id,
            "conversation_id": message.conversation_id,
            "recipients": len(ids),
            "gateways": len(by_gateway),
            "offline": len(offline),
            "trace_id": trace_id,
        },
    )
    return offline


def deliver_to_users(
    message: Message,
    user_ids: Iterable[int],
    *,
    trace_id: str = "",
    skip_connection_id: str = "",
    received_at_ms: int = 0,
) -> list[int]:
    """Send new-message for `message` to every live socket of `user_ids`.

    One presence round trip per PRESENCE_BATCH_SIZE users, one envelope per gateway.
    Recipients with no live connection get an offline push (tasks.offline_push), except
    the sender and members who muted the conversation; callers must not enqueue it again.
    Returns the ids that had no live connection.
    """
    ids = [int(u) for u in user_ids]
    return _deliver(
        message,
        ids,
        _lookup(ids),
        muted=None,
        sender_name=None,
        trace_id=trace_id,
        skip_connection_id=skip_connection_id,
        received_at_ms=received_at_ms,
    )


@dataclass(frozen=True)
class ToRoute:
    """A persisted message and where it came from (for the trace and the sender's socket)."""

    message: Message
    trace_id: str = ""
    sender_connection_id: str = ""
    received_at_ms: int = 0
    # {member id: muted} of the conversation when the persist step read it (with its
    # lock); None: routing reads the members (or leaves a large group to the fan-out task).
    members: Mapping[int, bool] | None = None


def route_messages(
    items: Sequence[ToRoute], *, flush: bool = False, before_produce: Callable[[], None] | None = None
) -> None:
    """Deliver persisted messages to their conversations' members (the senders' other
    devices included) and enqueue their search indexing, reading each conversation's
    members and muted ids once and looking up the presence of all recipients together.
    Safe to call again for the same messages (at-least-once): gateways drop a new-message
    a socket already had. `before_produce` runs once the reads are done (or have failed),
    before the first envelope is produced (the logic produces its acks there)."""
    if not items:
        if before_produce is not None:
            before_produce()
        return
    try:
        member_flags, sizes, sessions = _read_for_routing(items)
    finally:
        if before_produce is not None:
            before_produce()
    members = {cid: list(flags) for cid, flags in member_flags.items()}
    muted = {cid: {u for u, is_muted in flags.items() if is_muted} for cid, flags in member_flags.items()}
    names: dict[int, str] = {}
    index_on_write = settings.SEARCH_INDEX_ON_WRITE
    for item in items:
        _route_one(item, members, muted, sizes, sessions, names, index_on_write)
    if flush:
        get_producer().flush()


def _read_for_routing(
    items: Sequence[ToRoute],
) -> tuple[dict[int, Mapping[int, bool]], dict[int, tuple[str, int]], Sessions]:
    """The members (with muted flags) of the batch's inline-routed conversations, the
    sizes of those read here, and the recipients' live sessions."""
    # Members the persist step read with its lock (the logic's batches): no query here.
    member_flags: dict[int, Mapping[int, bool]] = {
        item.message.conversation_id: item.members for item in items if item.members is not None
    }
    conversation_ids = {item.message.conversation_id for item in items} - member_flags.keys()
    # One-to-one conversations whose type the persist step already read need no query.
    known_single = {
        item.message.conversation_id
        for item in items
        if item.message.conversation_id in conversation_ids
        and Message.conversation.is_cached(item.message)
        and item.message.conversation.type == Conversation.Type.SINGLE
    }
    sizes = hot_sql.conversation_sizes(conversation_ids - known_single)
    sizes.update({conversation_id: (Conversation.Type.SINGLE, 2) for conversation_id in known_single})
    small: list[int] = []
    for conversation_id, (kind, size) in sizes.items():
        if kind == Conversation.Type.GROUP and size > settings.LARGE_GROUP_THRESHOLD:
            continue  # fanned out per message by the task, never held in memory here
        small.append(conversation_id)
    # Members and their muted flags of every other small conversation: one query.
    if small:
        member_flags.update(members_of_conversations(conversation_ids=small))
    sessions = _lookup(user_id for flags in member_flags.values() for user_id in flags)
    return member_flags, sizes, sessions


def _route_one(
    item: ToRoute,
    members: dict[int, list[int]],
    muted: dict[int, set[int]],
    sizes: dict[int, tuple[str, int]],
    sessions: Sessions,
    names: dict[int, str],
    index_on_write: bool,
) -> None:
    message = item.message
    # Each message's trace id is the current one while it is routed (task headers, logs).
    with tracing.bind(item.trace_id) if item.trace_id else contextlib.nullcontext():
        if message.conversation_id not in members:
            enqueue_task("tasks.large_group_fanout", message_id=message.id, trace_id=item.trace_id)
            delivery_trace.record(
                "fanout_enqueued",
                trace_id=item.trace_id,
                message_id=message.id,
                members=sizes[message.conversation_id][1],
            )
        else:
            ids = members[message.conversation_id]
            if message.sender_id not in names:
                names[message.sender_id] = _sender_name(message)
            _deliver(
                message,
                ids,
                sessions,
                muted=muted.get(message.conversation_id, set()),
                sender_name=names[message.sender_id],
                trace_id=item.trace_id,
                skip_connection_id=item.sender_connection_id,
                received_at_ms=item.received_at_ms,
            )
        # Both search backends' indexes are kept by the database itself (GIN index,
        # FTS5 triggers); a task per message would only cost a broker round trip.
        if index_on_write:
            enqueue_task("tasks.index_message", message_id=message.id)


def route_message(
    message: Message,
    *,
    trace_id: str = "",
    sender_connection_id: str = "",
    flush: bool = False,
    received_at_ms: int = 0,
) -> None:
    """Deliver one persisted message (REST, gRPC): route_messages() with a batch of one."""
    route_messages(
        [
            ToRoute(
                message=message,
                trace_id=trace_id,
                sender_connection_id=sender_connection_id,
                received_at_ms=received_at_ms,
            )
        ],
        flush=flush,
    )


def route_on_commit(message: Message, *, trace_id: str = "") -> None:
    """Deliver a message sent outside the logic loop (REST, gRPC) once its row is committed.

    The caller already has its answer (the message is persisted); a routing failure is
    logged and recipients pick the message up on their next sync — failing the request
    would only invite a resend.
    """

    def route() -> None:
        delivery_trace.record(
            "persisted",
            trace_id=trace_id,
            message_id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            via="api",
        )
        try:
            route_message(message, trace_id=trace_id, flush=True)
        except Exception:
            logger.exception("route_after_commit_failed", extra={"message_id": message.id})

    transaction.on_commit(route)


def notify_read(*, user_id: int, conversation_id: int, seq: int, skip_connection_id: str = "") -> None:
    """Tell the reader's other sockets that the conversation is read up to seq."""
    connections = get_presence().lookup([user_id]).get(user_id, {})
    gateways = {gw for conn, gw in connections.items() if conn != skip_connection_id}
    for gateway_id in gateways:
        envelope = pb.DownstreamMessage(
            trace_id=tracing.current_trace_id(),
            kind=pb.DownstreamMessage.READ,
            recipient_user_ids=[user_id],
            connection_id=skip_connection_id,
            conversation_id=conversation_id,
            read_seq=seq,
            reader_id=user_id,
        )
        _produce(downstream_topic(gateway_id), envelope)
    if gateways:
        get_producer().flush()


# --- read receipts (issue 10) -----------------------------------------------------------------


def receipts_pushed(*, conversation_type: str, member_count: int) -> bool:
    """Whether a read in this conversation is pushed to the other members as a receipt
    frame: not in groups above RECEIPT_MAX_GROUP_SIZE, where every read would fan out to
    every member (their counts stay in history and GET conversations/{id}/receipts)."""
    return conversation_type != Conversation.Type.GROUP or member_count <= settings.RECEIPT_MAX_GROUP_SIZE


def notify_receipt(*, user_id: int, conversation_id: int, seq: int) -> int:
    """Tell the other members' live sockets that user_id read conversation_id up to seq:
    one member query, one presence lookup per PRESENCE_BATCH_SIZE members and ONE RECEIPT
    envelope per gateway carrying its recipient ids. Produces without flushing; returns
    the number of envelopes. Callers decide whether a receipt is due (publish_read)."""
    from messaging.selectors import member_user_ids

    others = [u for u in member_user_ids(conversation_id=conversation_id) if u != int(user_id)]
    if not others:
        return 0
    by_gateway = recipients_by_gateway(_lookup(others))
    trace_id = tracing.current_trace_id()
    for gateway_id, recipients in by_gateway.items():
        envelope = pb.DownstreamMessage(
            trace_id=trace_id,
            kind=pb.DownstreamMessage.RECEIPT,
            recipient_user_ids=recipients,
            conversation_id=int(conversation_id),
            read_seq=int(seq),
            reader_id=int(user_id),
        )
        _produce(downstream_topic(gateway_id), envelope)
    return len(by_gateway)


def publish_read(result, *, skip_connection_id: str = "") -> None:  # noqa: ANN001 - services.ReadResult
    """After services.read_conversation (REST, WebSocket, gRPC): the reader's other
    devices get READ; the other members get a RECEIPT, only when the pointer actually
    moved, the reader sends receipts and the conversation is within
    RECEIPT_MAX_GROUP_SIZE. A routing failure is logged, never failed to the reader: the
    read is stored and the others see it in history and the receipts endpoint."""
    notify_read(
        user_id=result.user_id,
        conversation_id=result.conversation_id,
        seq=result.last_read_seq,
        skip_connection_id=skip_connection_id,
    )
    if not (
        result.moved
        and result.send_read_receipts
        and receipts_pushed(conversation_type=result.conversation_type, member_count=result.member_count)
    ):
        return
    try:
        if notify_receipt(user_id=result.user_id, conversation_id=result.conversation_id, seq=result.last_read_seq):
            get_producer().flush()
    except Exception:
        logger.exception(
            "receipt_route_failed", extra={"conversation_id": result.conversation_id, "user_id": result.user_id}
        )


def route_presence(changed: dict[int, int], *, flush: bool = True) -> int:
    """Push presence changes (user id -> when, ms) to the live sockets of the users who
    can see them; returns how many envelopes were produced.

    The state sent is what presence says now (one batched lookup covers the changed users
    and their watchers). Each target gateway gets one PRESENCE envelope per distinct set
    of changes its recipients may see (usually one): a recipient never learns the presence
    of someone they share no conversation with.
    """
    if not changed:
        return 0
    user_ids = list(changed)
    watchers = presence_push.watchers_of(user_ids)
    visible: dict[int, set[int]] = {}
    for user_id, ids in watchers.items():
        for watcher_id in ids:
            visible.setdefault(watcher_id, set()).add(user_id)
    if not visible:
        return 0
    sessions = _lookup([*user_ids, *visible])
    states = {
        user_id: pb.PresenceChange(user_id=user_id, online=bool(sessions.get(user_id)), last_seen_ms=at_ms)
        for user_id, at_ms in changed.items()
    }
    targets: dict[tuple[str, frozenset[int]], list[int]] = {}
    for watcher_id, seen in visible.items():
        key_set = frozenset(seen)
        for gateway_id in set(sessions.get(watcher_id, {}).values()):
            targets.setdefault((gateway_id, key_set), []).append(watcher_id)
    trace_id = tracing.current_trace_id()
    for (gateway_id, seen), recipients in targets.items():
        envelope = pb.DownstreamMessage(
            trace_id=trace_id,
            kind=pb.DownstreamMessage.PRESENCE,
            recipient_user_ids=sorted(recipients),
            presence=[states[u] for u in sorted(seen)],
        )
        _produce(downstream_topic(gateway_id), envelope)
    if targets and flush:
        get_producer().flush()
    logger.debug("presence_routed", extra={"changed": len(changed), "envelopes": len(targets)})
    return len(targets)


# Recipients per MESSAGE_UPDATE envelope: bounds an envelope's size in a huge group.
UPDATE_ENVELOPE_MAX_RECIPIENTS = 1000


def route_message_update(
    *, message_id: int, kind: str, actor_id: int, trace_id: str = "", flush: bool = True
) -> None:
    """Send `update {kind, message}` (the message's current state) to every live socket
    of the conversation's members, the actor's own sockets included (that is their
    confirmation); kind "hide" goes to the actor's sockets only. One MESSAGE_UPDATE
    envelope per gateway, as for new messages; members are read in keyset pages and their
    presence in PRESENCE_BATCH_SIZE lookups, so a huge group is never held in memory at
    once. No push: an update is not a new message. Call after the change committed
    (route_update_on_commit); the caller flushes unless flush=True."""
    # The whole current state, as history shows it: the quote and the attachment too, or
    # a client applying the update would lose them.
    message = (
        Message.objects.select_related("sender", "reply_to", "reply_to__sender").filter(id=message_id).first()
    )
    if message is None:
        return
    with_attachments([message])
    message.reaction_counts = reaction_counts(message_ids=[message.id]).get(message.id, [])
    chat = chat_message_from_model(message, sender_name=_sender_name(message))
    trace_id = trace_id or tracing.current_trace_id()
    if kind == "hide":
        pages: Iterable[list[int]] = [[int(actor_id)]]
    else:
        pages = (ids for ids, _ in member_ids_batches(conversation_id=message.conversation_id, batch_size=1000))
    by_gateway: dict[str, list[int]] = {}

    def produce(gateway_id: str, recipients: list[int]) -> None:
        envelope = pb.DownstreamMessage(
            trace_id=trace_id,
            kind=pb.DownstreamMessage.MESSAGE_UPDATE,
            recipient_user_ids=recipients,
            message=chat,
            update_kind=kind,
            actor_id=int(actor_id),
            conversation_id=message.conversation_id,
        )
        _produce(downstream_topic(gateway_id), envelope)

    recipients_total = 0
    for ids in pages:
        for user_id, connections in _lookup(ids).items():
            if not connections:
                continue
            recipients_total += 1
            for gateway_id in set(connections.values()):
                users = by_gateway.setdefault(gateway_id, [])
                users.append(user_id)
                if len(users) >= UPDATE_ENVELOPE_MAX_RECIPIENTS:
                    produce(gateway_id, users)
                    by_gateway[gateway_id] = []
    for gateway_id, users in by_gateway.items():
        if users:
            produce(gateway_id, users)
    delivery_trace.record(
        "update_routed",
        trace_id=trace_id,
        message_id=message.id,
        kind=kind,
        gateways=len(by_gateway),
        recipients=recipients_total,
    )
    logger.debug("message_update_routed", extra={"message_id": message.id, "kind": kind, "trace_id": trace_id})
    if flush:
        get_producer().flush()


def route_update_on_commit(*, message_id: int, kind: str, actor_id: int, trace_id: str = "") -> None:
    """route_message_update once the change is committed (REST, gRPC, the gateway). As
    for route_on_commit, a routing failure is logged: the change is stored, and members
    see it in their next history or sync."""

    def route() -> None:
        try:
            route_message_update(message_id=message_id, kind=kind, actor_id=actor_id, trace_id=trace_id, flush=True)
        except Exception:
            logger.exception("route_update_after_commit_failed", extra={"message_id": message_id, "kind": kind})

    transaction.on_commit(route)
