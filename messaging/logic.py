"""The logic consumer's processing function: upstream records in, persisted and routed
messages out. It knows nothing about Kafka; the loop in messaging.consumers_registry
consumes, calls process_upstream_batch, then commits.

At-least-once: a batch that fails before the commit is delivered again. send_message
de-duplicates on (sender, client_msg_id), so a redelivered record gets the first
message's id and seq and is routed again; gateways drop a new-message a socket already
had, so no socket shows a message twice.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from django.conf import settings
from django.db import DatabaseError, transaction
from google.protobuf.message import DecodeError

from gochat_site import errors, metrics, tracing
from gochat_site.logging import trace_id_var
from messaging import delivery_trace
from messaging.bus import BusRecord, downstream_topic, get_producer
from messaging.gateway.envelopes import chat_message_from_model
from messaging.models import Message
from messaging.routing import ToRoute, route_messages
from messaging.services import send_message
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)


def _reply(upstream: pb.UpstreamMessage, envelope: pb.DownstreamMessage) -> None:
    envelope.trace_id = upstream.trace_id
    envelope.connection_id = upstream.connection_id
    envelope.client_msg_id = upstream.client_msg_id
    envelope.recipient_user_ids.append(upstream.sender_id)
    envelope.received_at_ms = upstream.received_at_ms
    headers = {"trace_id": upstream.trace_id} if upstream.trace_id else {}
    get_producer().produce(downstream_topic(upstream.gateway_id), envelope.SerializeToString(), headers=headers)


def _ack(upstream: pb.UpstreamMessage, message: Message) -> None:
    _reply(
        upstream,
        pb.DownstreamMessage(kind=pb.DownstreamMessage.SEND_ACK, message=chat_message_from_model(message)),
    )


def _refuse(upstream: pb.UpstreamMessage, code: int, text: str) -> None:
    _reply(upstream, pb.DownstreamMessage(kind=pb.DownstreamMessage.SEND_ERROR, error_code=code, error_message=text))


def _dead_letter(record: BusRecord, reason: str) -> None:
    headers = dict(record.headers)
    headers["error"] = reason
    headers["source_topic"] = record.topic
    get_producer().produce(settings.KAFKA_UPSTREAM_DLQ_TOPIC, record.value, key=record.key, headers=headers)
    logger.error("upstream_dead_lettered", extra={"reason": reason, "topic": record.topic, "offset": record.offset})


def _process_one(record: BusRecord) -> ToRoute | None:
    # The record's trace id is the current one while it is processed (logs, tasks, envelopes).
    with tracing.bind(record.headers.get("trace_id", "")):
        return _process_record(record)


def _process_record(record: BusRecord) -> ToRoute | None:
    """Persist one record and register its ack; the message to route, or None when the
    record was refused or dead-lettered."""
    try:
        upstream = pb.UpstreamMessage.FromString(record.value)
    except DecodeError:
        _dead_letter(record, "undecodable UpstreamMessage")
        return None
    if not upstream.trace_id:
        upstream.trace_id = tracing.current_trace_id()
    elif upstream.trace_id != tracing.current_trace_id():
        # The payload's id wins over a missing or different header; _process_one's bind
        # restores the previous value afterwards.
        trace_id_var.set(upstream.trace_id)
    if not upstream.gateway_id or not upstream.sender_id:
        _dead_letter(record, "UpstreamMessage without gateway_id or sender_id")
        return None
    try:
        result = send_message(
            sender_id=upstream.sender_id,
            conversation_id=upstream.conversation_id,
            content=upstream.content,
            client_msg_id=upstream.client_msg_id,
            message_type=upstream.message_type,
        )
    except errors.GoChatError as exc:
        logger.info(
            "upstream_refused",
            extra={"code": exc.code, "sender_id": upstream.sender_id, "trace_id": upstream.trace_id},
        )
        metrics.MESSAGES_REFUSED.labels(code=str(exc.code)).inc()
        delivery_trace.record("refused", trace_id=upstream.trace_id, code=exc.code, reason=exc.message)
        transaction.on_commit(lambda: _refuse(upstream, exc.code, exc.message))
        return None
    except DatabaseError:
        # The database is unreachable or failing: let the batch fail so its offsets are
        # not committed and it is consumed again once the database is back.
        raise
    except Exception:
        logger.exception("upstream_failed", extra={"sender_id": upstream.sender_id, "trace_id": upstream.trace_id})
        transaction.on_commit(lambda: _refuse(upstream, errors.INTERNAL, "internal error"))
        return None
    message = result.message
    metrics.MESSAGES_PERSISTED.labels(duplicate=str(not result.created).lower()).inc()
    delivery_trace.record(
        "persisted",
        trace_id=upstream.trace_id,
        message_id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        duplicate=not result.created,
    )
    # send_message has committed by now (it runs in autocommit mode here); on_commit keeps
    # "ack only after commit" true even if a caller ever wraps this in a transaction.
    # Ack before routing (the batch is routed after its last record): on the sender's
    # gateway the ack then precedes any new-message of the same id, and the socket's
    # de-dup memory drops that new-message.
    transaction.on_commit(lambda: _ack(upstream, message))
    if upstream.received_at_ms:
        logger.info(
            "upstream_processed",
            extra={
                "message_id": message.id,
                "seq": message.seq,
                "duplicate": not result.created,
                "gateway_to_logic_ms": int(time.time() * 1000) - upstream.received_at_ms,
                "trace_id": upstream.trace_id,
            },
        )
    return ToRoute(
        message=message,
        trace_id=upstream.trace_id,
        sender_connection_id=upstream.connection_id,
        received_at_ms=upstream.received_at_ms,
    )


def process_upstream_batch(records: Sequence[BusRecord]) -> None:
    """Persist and acknowledge each upstream record, route the persisted messages together
    (one member read per conversation, one presence lookup for the whole batch), then
    flush the producer so every ack and envelope is on the broker before the caller
    commits the offsets."""
    to_route = [item for item in (_process_one(record) for record in records) if item is not None]
    # Routing waits for the commit of every message it carries (at once in autocommit).
    transaction.on_commit(lambda: route_messages(to_route))
    get_producer().flush()
