"""Downstream delivery: DownstreamMessage envelopes from this gateway's topic, written as
frames to the local sockets they name. Knows the registry, not the bus: the loop in
messaging.consumers_registry ("gateway-downstream") consumes and commits around it."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from django.conf import settings

from google.protobuf.message import DecodeError

from gochat_site import metrics, tracing
from messaging import delivery_trace
from messaging.bus import BusRecord
from messaging.gateway import protocol
from messaging.gateway.envelopes import message_dict_from_pb, presence_dicts_from_pb
from messaging.gateway.registry import registry
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)
Kind = pb.DownstreamMessage


def _observe(envelope: pb.DownstreamMessage, kind: str, sockets: list[tuple[int, str]]) -> None:
    """Latency metric and the delivery-trace event of one delivered envelope."""
    # Gateway receive time when the envelope carries it, else the row's creation time.
    started_ms = envelope.received_at_ms or envelope.message.created_at_ms
    if started_ms:
        metrics.DELIVERY_LATENCY.labels(kind=kind).observe(max(0.0, time.time() - started_ms / 1000))
    delivery_trace.record(
        "acked" if kind == "ack" else "delivered",
        trace_id=envelope.trace_id,
        message_id=envelope.message.id,
        gateway=settings.GATEWAY_ID,
        **delivery_trace.sockets_field(sockets),
    )


def _lifecycle_echo(envelope: pb.DownstreamMessage) -> dict[str, str] | None:
    """A refused edit/recall (update_kind set by the logic) names the request it answers."""
    if not envelope.update_kind:
        return None
    echo = {"request": f"{envelope.update_kind}-message", "conversation_id": str(envelope.conversation_id)}
    if envelope.message.id:
        echo["message_id"] = str(envelope.message.id)
    if envelope.message.client_msg_id:
        echo["target_client_msg_id"] = envelope.message.client_msg_id
    return echo


# Frames of one envelope written between two turns of the event loop (16 beat 64 in two
# back-to-back pairs of production s2k runs: 64 and 71 ms against 66 and 77). Under daphne
# a frame now leaves at once when its socket has nothing queued (daphne_options.send_now);
# a frame that queues is sent by the event loop on its next turn, and other sockets'
# frames (a send-ack, a reply) wait for those turns too while a group of 1,000 is written.
FRAMES_PER_LOOP_TURN = 16


async def deliver_envelope(envelope: pb.DownstreamMessage) -> int:
    """Write one envelope to the local sockets it targets; return how many got a frame."""
    written = 0
    if envelope.kind == Kind.NEW_MESSAGE:
        frame = protocol.new_message_frame(message_dict_from_pb(envelope.message))
        # Encoded once for every recipient socket (a group's envelope lists hundreds).
        encoded = protocol.encode(frame)
        sockets: list[tuple[int, str]] = []
        for user_id in envelope.recipient_user_ids:
            for connection in registry.of_user(user_id):
                if connection.connection_id == envelope.connection_id:
                    continue  # the sending socket: it has the send-ack
                await connection.push_new_message(frame, message_id=envelope.message.id, encoded=encoded)
                sockets.append((user_id, connection.connection_id))
                written += 1
                if written % FRAMES_PER_LOOP_TURN == 0:
                    await asyncio.sleep(0)  # let the loop send what is queued so far
        _observe(envelope, "new_message", sockets)
    elif envelope.kind == Kind.SEND_ACK:
        connection = registry.get(envelope.connection_id)
        if connection is not None:
            message = message_dict_from_pb(envelope.message)
            frame = protocol.send_ack_frame(
                client_msg_id=envelope.client_msg_id or envelope.message.client_msg_id,
                message_id=envelope.message.id,
                conversation_id=envelope.message.conversation_id,
                seq=envelope.message.seq,
                created_at=message["created_at"],
            )
            await connection.push_frame(frame, delivered_id=envelope.message.id)
            written += 1
            _observe(envelope, "ack", [(connection.user_id, connection.connection_id)])
    elif envelope.kind == Kind.SEND_ERROR:
        connection = registry.get(envelope.connection_id)
        if connection is not None:
            frame = protocol.error_frame(
                code=envelope.error_code,
                message=envelope.error_message,
                client_msg_id=envelope.client_msg_id,
                echo=_lifecycle_echo(envelope),
            )
            await connection.push_frame(frame)
            written += 1
    elif envelope.kind == Kind.READ:
        frame = protocol.read_frame(conversation_id=envelope.conversation_id, seq=envelope.read_seq)
        for user_id in envelope.recipient_user_ids:
            for connection in registry.of_user(user_id):
                if connection.connection_id != envelope.connection_id:
                    await connection.push_frame(frame)
                    written += 1
    elif envelope.kind in (Kind.RECEIPT, Kind.TYPING):
        written += await _deliver_ephemeral(envelope)
    elif envelope.kind == Kind.PRESENCE:
        # The envelope lists every recipient on this gateway that may see these changes.
        frame = protocol.presence_frame(presence_dicts_from_pb(envelope.presence))
        for user_id in envelope.recipient_user_ids:
            for connection in registry.of_user(user_id):
                await connection.push_frame(frame)
                written += 1
    elif envelope.kind == Kind.MESSAGE_UPDATE:
        frame = protocol.update_frame(kind=envelope.update_kind, message=message_dict_from_pb(envelope.message))
        encoded = protocol.encode(frame)
        for user_id in envelope.recipient_user_ids:
            for connection in registry.of_user(user_id):
                # Every socket, the actor's included: it is their confirmation too.
                await connection.push_encoded(frame, encoded)
                written += 1
    else:
        logger.warning("downstream_unknown_kind", extra={"kind": int(envelope.kind)})
    return written


async def _deliver_ephemeral(envelope: pb.DownstreamMessage) -> int:
    """RECEIPT and TYPING: one frame to every local socket of the listed recipients
    (never to the reader's or typer's own sockets)."""
    if envelope.kind == Kind.RECEIPT:
        actor = envelope.reader_id
        frame = protocol.receipt_frame(conversation_id=envelope.conversation_id, user_id=actor, seq=envelope.read_seq)
    else:
        # The typer's name rides in the ChatMessage stub (sender_id/sender_name): the
        # envelope has no name field of its own.
        actor = envelope.actor_id
        frame = protocol.typing_frame(
            conversation_id=envelope.conversation_id, user_id=actor, user_name=envelope.message.sender_name
        )
    written = 0
    for user_id in envelope.recipient_user_ids:
        if user_id == actor:
            continue
        for connection in registry.of_user(user_id):
            await connection.push_frame(frame)
            written += 1
    return written


async def deliver_batch(records: Sequence[BusRecord]) -> None:
    for record in records:
        try:
            envelope = pb.DownstreamMessage.FromString(record.value)
        except DecodeError:
            # Nothing to retry: the envelope can never be read. Skip it, loudly.
            logger.error("downstream_bad_payload", extra={"topic": record.topic, "offset": record.offset})
            continue
        with tracing.bind(envelope.trace_id):
            await deliver_envelope(envelope)
