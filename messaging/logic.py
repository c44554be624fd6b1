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
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import DatabaseError, transaction
from google.protobuf.message import DecodeError

from gochat_site import errors, metrics, tracing
from messaging import delivery_trace, lifecycle
from messaging.bus import BusRecord, downstream_topic, get_producer
from messaging.gateway.envelopes import chat_message_from_model
from messaging.models import Message
from messaging.routing import ToRoute, route_message_update, route_messages
from messaging.services import SendOutcome, SendRequest, send_messages
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
    metrics.count_dead_letter(topic=settings.KAFKA_UPSTREAM_DLQ_TOPIC, reason="undecodable")
    logger.error("upstream_dead_lettered", extra={"reason": reason, "topic": record.topic, "offset": record.offset})


def _decode(record: BusRecord) -> pb.UpstreamMessage | None:
    """The record's UpstreamMessage, or None once it has been dead-lettered."""
    try:
        upstream = pb.UpstreamMessage.FromString(record.value)
    except DecodeError:
        _dead_letter(record, "undecodable UpstreamMessage")
        return None
    if not upstream.trace_id:
        # The payload's id wins over the header; the header is the fallback.
        upstream.trace_id = record.headers.get("trace_id", "") or tracing.new_trace_id()
    if not upstream.gateway_id or not upstream.sender_id:
        _dead_letter(record, "UpstreamMessage without gateway_id or sender_id")
        return None
    return upstream


def _request(upstream: pb.UpstreamMessage) -> SendRequest:
    return SendRequest(
        sender_id=upstream.sender_id,
        conversation_id=upstream.conversation_id,
        content=upstream.content,
        client_msg_id=upstream.client_msg_id,
        message_type=upstream.message_type,
        reply_to=upstream.reply_to_id or None,
        attachment_id=upstream.attachment_id or None,
    )


def _send_one_by_one(upstreams: Sequence[pb.UpstreamMessage]) -> list[SendOutcome]:
    """The fallback when the batch failed on something other than the database: each
    record alone, so a record that trips a bug is refused (1004) and the rest are stored."""
    outcomes: list[SendOutcome] = []
    for upstream in upstreams:
        try:
            outcomes.extend(send_messages([_request(upstream)]))
        except DatabaseError:
            raise
        except Exception:
            logger.exception("upstream_failed", extra={"sender_id": upstream.sender_id, "trace_id": upstream.trace_id})
            outcomes.append(errors.GoChatError("internal error"))
    return outcomes


def _persist(upstreams: Sequence[pb.UpstreamMessage]) -> list[SendOutcome]:
    try:
        return send_messages([_request(upstream) for upstream in upstreams])
    except DatabaseError:
        # The database is unreachable or failing: let the batch fail so its offsets are
        # not committed and it is consumed again once the database is back.
        raise
    except Exception:
        logger.exception("upstream_batch_failed", extra={"records": len(upstreams)})
        return _send_one_by_one(upstreams)


def _answer(
    upstreams: Sequence[pb.UpstreamMessage], outcomes: Sequence[SendOutcome]
) -> tuple[list[ToRoute], Callable[[], None]]:
    """Record each outcome (metrics, trace); return the messages to route and the function
    that produces the acks and refusals (see _route_and_reply)."""
    to_route: list[ToRoute] = []
    replies: list[tuple[pb.UpstreamMessage, SendOutcome]] = []
    created = duplicates = 0
    for upstream, outcome in zip(upstreams, outcomes):
        replies.append((upstream, outcome))
        if isinstance(outcome, errors.GoChatError):
            metrics.MESSAGES_REFUSED.labels(code=str(outcome.code)).inc()
            logger.info(
                "upstream_refused",
                extra={"code": outcome.code, "sender_id": upstream.sender_id, "trace_id": upstream.trace_id},
            )
            delivery_trace.record("refused", trace_id=upstream.trace_id, code=outcome.code, reason=outcome.message)
            continue
        message = outcome.message
        if outcome.created:
            created += 1
        else:
            duplicates += 1
        delivery_trace.record(
            "persisted",
            trace_id=upstream.trace_id,
            message_id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            duplicate=not outcome.created,
        )
        if upstream.received_at_ms:
            metrics.GATEWAY_TO_LOGIC_SECONDS.observe(max(0.0, time.time() - upstream.received_at_ms / 1000))
        to_route.append(
            ToRoute(
                message=message,
                trace_id=upstream.trace_id,
                sender_connection_id=upstream.connection_id,
                received_at_ms=upstream.received_at_ms,
                members=outcome.members,
            )
        )
    # One line per batch, not per message: an INFO line per message cost more than its
    # persistence under load. At one message in flight a batch is one message and the
    # line ~4% of its CPU (py-spy of bench.logic_batch); kept, since operators and the e2e
    # tests read which process handled what from it.
    logger.info(
        "upstream_batch_processed",
        extra={"records": len(upstreams), "persisted": created, "duplicates": duplicates,
               "refused": len(upstreams) - created - duplicates},
    )
    if created:
        metrics.MESSAGES_PERSISTED.labels(duplicate="false").inc(created)
    if duplicates:
        metrics.MESSAGES_PERSISTED.labels(duplicate="true").inc(duplicates)

    def send_replies() -> None:
        # Acks go before routing: on the sender's gateway the ack then precedes any
        # new-message of the same id, and the socket's de-dup memory drops that one.
        for upstream, outcome in replies:
            if isinstance(outcome, errors.GoChatError):
                _refuse(upstream, outcome.code, outcome.message)
            else:
                _ack(upstream, outcome.message)

    return to_route, send_replies


def _route_and_reply(to_route: list[ToRoute], send_replies: Callable[[], None]) -> None:
    """Once the batch is committed: route it, with the acks produced between routing's
    reads (presence) and its first envelope. The acks and the new-messages then reach a
    gateway's topic together and are read in one fetch; produced before the reads, a
    fetch could take the acks alone and leave the new-messages to the next one (a whole
    fetch wait later). The acks still go out if the reads fail (routing retries later)."""
    # send_messages has committed by now (the loop runs in autocommit mode); on_commit
    # keeps "ack only after commit" true even if a caller wraps this in a transaction.
    transaction.on_commit(lambda: route_messages(to_route, before_produce=send_replies))


SEND_ACTIONS = ("", "send")


def _refuse_lifecycle(upstream: pb.UpstreamMessage, exc: errors.GoChatError) -> None:
    """The error of a refused edit/recall, to the requesting socket; update_kind and the
    target let the gateway name the request (never client_msg_id: that means a send)."""
    _reply(
        upstream,
        pb.DownstreamMessage(
            kind=pb.DownstreamMessage.SEND_ERROR,
            error_code=exc.code,
            error_message=exc.message,
            update_kind=upstream.action,
            conversation_id=upstream.conversation_id,
            message=pb.ChatMessage(id=upstream.target_message_id, client_msg_id=upstream.target_client_msg_id),
        ),
    )


def _apply_lifecycle(upstream: pb.UpstreamMessage) -> None:
    """Apply one edit or recall record (the sends before it are persisted by now) and
    route its update; a refusal goes back to the requesting socket."""
    target = {
        "user_id": upstream.sender_id,
        "conversation_id": upstream.conversation_id,
        "message_id": upstream.target_message_id or None,
        "client_msg_id": upstream.target_client_msg_id or None,
    }
    try:
        if upstream.action == lifecycle.EDIT:
            message = lifecycle.edit_message(content=upstream.content, **target)
        elif upstream.action == lifecycle.RECALL:
            message = lifecycle.recall_message(**target)
        else:
            raise errors.InvalidParams("unknown action", {"action": [f"One of {list(SEND_ACTIONS)}, edit, recall."]})
    except errors.GoChatError as exc:
        metrics.MESSAGES_REFUSED.labels(code=str(exc.code)).inc()
        logger.info(
            "upstream_lifecycle_refused",
            extra={"code": exc.code, "action": upstream.action, "sender_id": upstream.sender_id,
                   "trace_id": upstream.trace_id},
        )
        _refuse_lifecycle(upstream, exc)
        return
    except DatabaseError:
        raise  # not committed: the batch comes back once the database does
    except Exception:
        logger.exception("upstream_lifecycle_failed", extra={"trace_id": upstream.trace_id})
        _refuse_lifecycle(upstream, errors.GoChatError("internal error"))
        return
    route_message_update(
        message_id=message.id, kind=upstream.action, actor_id=upstream.sender_id, trace_id=upstream.trace_id,
        flush=False,
    )


def _process_mixed(upstreams: Sequence[pb.UpstreamMessage]) -> None:
    """A batch holding edits or recalls: in record order. Each run of sends is persisted,
    acked and routed as one batch before the next edit/recall is applied, so an edit of a
    message sent earlier in this very batch finds it stored (targeted by the sender's
    client_msg_id) and its update reaches sockets after the new-message."""
    run: list[pb.UpstreamMessage] = []

    def flush_run() -> None:
        if run:
            batch = list(run)
            _route_and_reply(*_answer(batch, _persist(batch)))
            run.clear()

    for upstream in upstreams:
        if upstream.action in SEND_ACTIONS:
            run.append(upstream)
            continue
        flush_run()
        _apply_lifecycle(upstream)
    flush_run()


def process_upstream_batch(records: Sequence[BusRecord]) -> None:
    """Persist a consumed batch in one transaction (messaging.services.send_messages),
    acknowledge or refuse each record, route the persisted messages together (one member
    read per conversation, one presence lookup for the whole batch), then flush the
    producer so every ack and envelope is on the broker before the caller commits the
    offsets."""
    upstreams = [upstream for upstream in (_decode(record) for record in records) if upstream is not None]
    if any(upstream.action not in SEND_ACTIONS for upstream in upstreams):
        _process_mixed(upstreams)
    elif upstreams:
        # A pure-send batch (the hot path): exactly the statements it always issued.
        _route_and_reply(*_answer(upstreams, _persist(upstreams)))
    get_producer().flush()
