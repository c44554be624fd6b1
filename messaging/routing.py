"""Routing of a persisted message to the gateways that hold its recipients' sockets.

Presence is looked up in batches; each target gateway gets ONE DownstreamMessage carrying
all its recipient ids (multicast), never one envelope per recipient. Groups above
LARGE_GROUP_THRESHOLD are handed to the Celery fan-out task, which calls
deliver_to_users() batch by batch. Producing does not flush: the caller flushes once per
batch (the logic loop before committing offsets), or passes flush=True.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from gochat_site import tracing
from gochat_site.tasks_client import enqueue_task
from messaging import cache, delivery_trace
from messaging.bus import downstream_topic, get_producer
from messaging.gateway.envelopes import chat_message_from_model
from messaging.models import Conversation, Message
from messaging.presence import get_presence
from messaging.selectors import member_user_ids
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)


def _sender_name(message: Message) -> str:
    sender = message.sender if "sender" in message._state.fields_cache else None
    if sender is None:
        from django.contrib.auth import get_user_model

        sender = get_user_model().objects.filter(id=message.sender_id).only("username", "nickname").first()
    return sender.display_name if sender is not None else ""


def _produce(topic: str, envelope: pb.DownstreamMessage) -> None:
    headers = {"trace_id": envelope.trace_id} if envelope.trace_id else {}
    get_producer().produce(topic, envelope.SerializeToString(), headers=headers)


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
    presence = get_presence()
    batch = max(1, settings.PRESENCE_BATCH_SIZE)
    by_gateway: dict[str, list[int]] = {}
    offline: list[int] = []
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        sessions = presence.lookup(chunk)
        for user_id in chunk:
            connections = sessions.get(user_id)
            if not connections:
                offline.append(user_id)
                continue
            # The sending socket already has the message (send-ack); its other devices do not.
            targets = {gw for conn, gw in connections.items() if conn != skip_connection_id}
            for gateway_id in targets:
                by_gateway.setdefault(gateway_id, []).append(user_id)
    if by_gateway:
        chat = chat_message_from_model(message, sender_name=_sender_name(message))
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
        muted = cache.muted_user_ids(message.conversation_id)
        push_ids = [u for u in offline if u != message.sender_id and u not in muted]
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
    logger.info(
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


def route_message(
    message: Message,
    *,
    trace_id: str = "",
    sender_connection_id: str = "",
    flush: bool = False,
    received_at_ms: int = 0,
) -> None:
    """Deliver a persisted message to its conversation's members (the sender's other
    devices included) and enqueue its search indexing. Safe to call again for the same
    message (at-least-once): gateways drop a new-message a socket already had."""
    conversation = Conversation.objects.select_related("group").get(id=message.conversation_id)
    size = conversation.group.member_count if conversation.group is not None else 2
    if conversation.type == Conversation.Type.GROUP and size > settings.LARGE_GROUP_THRESHOLD:
        enqueue_task("tasks.large_group_fanout", message_id=message.id, trace_id=trace_id)
        delivery_trace.record("fanout_enqueued", trace_id=trace_id, message_id=message.id, members=size)
    else:
        deliver_to_users(
            message,
            member_user_ids(conversation_id=conversation.id),
            trace_id=trace_id,
            skip_connection_id=sender_connection_id,
            received_at_ms=received_at_ms,
        )
    enqueue_task("tasks.index_message", message_id=message.id)
    if flush:
        get_producer().flush()


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
