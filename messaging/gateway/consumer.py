"""The WebSocket consumer at /ws: holds one socket, authenticates it, and adapts frames to
services. Frame syntax and error mapping are in protocol.py; delivery from the bus is in
downstream.py; the logic consumer persists what this one produces upstream."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from gochat_site import errors, metrics, tracing
from messaging import delivery_trace, lifecycle, presence_push, routing, services
from messaging.bus import get_producer
from messaging.gateway import auth, drain, loops, protocol
from messaging.gateway.upstream import health as upstream_health
from messaging.gateway.membership import check_member, is_known_member
from messaging.gateway.ratelimit import get_limiter
from messaging.gateway.registry import registry
from messaging.gateway.sync import sync_page
from messaging.gateway.typing import relay_typing
from messaging.presence import get_presence
from protos.gochat.v1 import envelopes_pb2 as pb

logger = logging.getLogger(__name__)

# Frame type label of each parsed command (metrics).
_COMMAND_TYPES = {
    protocol.SendMessage: "send-message", protocol.Sync: "sync", protocol.Read: "read", protocol.Ping: "ping",
    protocol.Typing: "typing",
    protocol.EditMessage: "edit-message", protocol.RecallMessage: "recall-message", protocol.React: "react",
    protocol.HideMessage: "hide-message",
}

# Close codes of broken paths (RFC 6455 1011 "internal error"): the socket cannot be
# served, so it is closed for the client to reconnect, never left open and dead.
CLOSE_INTERNAL = 1011

# Message ids each socket remembers having received (send-ack or new-message). Routing is
# at-least-once; this bounded memory is what keeps a socket from showing one twice.
DELIVERED_MEMORY = 1024


def _read(*, user_id: int, conversation_id: int, seq: int, connection_id: str) -> int:
    result = services.read_conversation(user_id=user_id, conversation_id=conversation_id, seq=seq)
    routing.publish_read(result, skip_connection_id=connection_id)
    read_seq = result.last_read_seq
    delivery_trace.record(
        "read", trace_id=tracing.current_trace_id(), conversation_id=conversation_id, user_id=str(user_id), seq=read_seq
    )
    return read_seq


def _react_or_hide(*, user_id: int, command: protocol.React | protocol.HideMessage) -> None:
    """Reactions and hides need no ordering behind a send (they name an acked message by
    id), so they call the service here instead of going upstream."""
    if isinstance(command, protocol.React):
        message = lifecycle.set_reaction(user_id=user_id, message_id=command.message_id, emoji=command.emoji)
        kind = lifecycle.REACTION
    else:
        message = lifecycle.hide_message(user_id=user_id, message_id=command.message_id)
        kind = lifecycle.HIDE
    routing.route_message_update(message_id=message.id, kind=kind, actor_id=user_id)


class _PathBroken(Exception):
    """The upstream producer or the presence path failed: close the socket with 1011."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The labelled child of WS_FRAMES_OUT per frame type: labels() takes a lock and builds a
# key on every call, and a group message writes a frame per member socket.
_FRAMES_OUT: dict[str, Any] = {}


def _frames_out(frame_type: str) -> Any:  # noqa: ANN401 - prometheus_client's child Counter
    child = _FRAMES_OUT.get(frame_type)
    if child is None:
        child = _FRAMES_OUT[frame_type] = metrics.WS_FRAMES_OUT.labels(type=frame_type)
    return child


class GatewayConsumer(AsyncWebsocketConsumer):
    # No Channels layer: delivery comes from the gateway's own downstream topic
    # (downstream.py), never from the layer. With the Redis layer configured every socket
    # would otherwise register a layer channel and wait on it: Redis reads per process,
    # memory per socket, and a failure mode (a Redis read timeout or restart closing
    # idle sockets with 1011) for nothing. An alias with no configuration gives None.
    channel_layer_alias = "gateway-no-layer"

    user_id: int | None = None
    user_name: str = ""
    connection_id: str = ""
    _registered: bool = False  # in the registry and in presence

    # --- lifecycle --------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._registered:
            # A second websocket.connect for a live socket (no ASGI server sends one):
            # ignored, or it would orphan the first registration under a new id.
            return
        self.connection_id = uuid.uuid4().hex
        self._delivered: OrderedDict[int, None] = OrderedDict()
        self._last_activity = time.monotonic()
        result = await auth.authenticate(self.scope)
        if result.user_id is None:
            # Accept, then close: a close before accept reaches a browser as a bare HTTP
            # 403, and the client could not tell "refresh your token" (4002) from 4001.
            await self.accept()
            await self.close(code=result.close_code, reason=result.reason)
            logger.info("ws_rejected", extra={"close_code": result.close_code, "reason": result.reason})
            return
        self.user_id = result.user_id
        self.user_name = result.user_name
        await loops.ensure_started()
        await self.accept()
        if drain.is_draining():
            # Going down: send the client to another gateway at once (the balancer has
            # already seen /readyz 503, this is a connection that raced it). Checked with
            # no await before registry.add: a drain that started while this socket was
            # being accepted either sees it in the registry or is seen here.
            await self.close(code=drain.CLOSE_SERVICE_RESTART, reason=drain.DRAIN_REASON)
            return
        registry.add(self)
        self._registered = True
        metrics.WS_CONNECTIONS.labels(gateway=settings.GATEWAY_ID).inc()
        try:
            live = await get_presence().aconnect(self.user_id, self.connection_id, settings.GATEWAY_ID)
        except Exception:
            logger.exception("ws_presence_failed", extra={"user_id": self.user_id, "connection_id": self.connection_id})
            await self._fail(CLOSE_INTERNAL, "presence unavailable")
            return
        if live is not None and live > settings.WS_MAX_CONNECTIONS_PER_USER:
            # Counted in presence, so across every gateway; this socket is the one too many.
            logger.info("ws_too_many_connections", extra={"user_id": self.user_id, "live": live})
            await self._fail(auth.CLOSE_TOO_MANY_CONNECTIONS, "too many connections")
            return
        if live == 1:
            # The user's first live socket anywhere: a presence change for those who can
            # see it, pushed by the gateway's presence loop (batched), not from here.
            presence_push.changes.mark(self.user_id)
        logger.info("ws_connected", extra={"user_id": self.user_id, "connection_id": self.connection_id})

    async def disconnect(self, code: int) -> None:
        await self._forget(code)

    async def _forget(self, code: int) -> None:
        if not self._registered:
            return
        self._registered = False
        registry.remove(self)
        metrics.WS_CONNECTIONS.labels(gateway=settings.GATEWAY_ID).dec()
        try:
            await get_presence().adisconnect(self.user_id, self.connection_id)
        except Exception:  # noqa: BLE001 - the entry expires with PRESENCE_TTL_SECONDS
            logger.warning("ws_presence_disconnect_failed", extra={"connection_id": self.connection_id}, exc_info=True)
        if not registry.of_user(self.user_id):
            # The last socket here; the push loop asks presence whether any is left elsewhere.
            presence_push.changes.mark(self.user_id)
        logger.info(
            "ws_disconnected", extra={"user_id": self.user_id, "connection_id": self.connection_id, "code": code}
        )

    async def _fail(self, code: int, reason: str) -> None:
        """Close a socket that cannot be served (the client reconnects) and forget it."""
        await self.close(code=code, reason=reason)
        await self._forget(code)

    def idle_for(self, now: float) -> float:
        """Seconds since the client's last frame (the gateway's idle sweep reads it)."""
        return now - self._last_activity

    async def close_idle(self) -> None:
        """Close a socket that sent nothing for WS_IDLE_TIMEOUT_SECONDS. One sweep of the
        gateway (loops.py) calls it, not a task per socket: a task and its coroutine frame
        for every idle socket were memory that S3 (RSS per idle socket) counts."""
        await self.close(code=auth.CLOSE_IDLE_TIMEOUT, reason="idle timeout")
        await self._forget(auth.CLOSE_IDLE_TIMEOUT)

    async def close_for_drain(self) -> None:
        """The gateway is stopping (drain.py): 1012, the client reconnects elsewhere."""
        await self.close(code=drain.CLOSE_SERVICE_RESTART, reason=drain.DRAIN_REASON)
        await self._forget(drain.CLOSE_SERVICE_RESTART)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops to a thread before every message to close stale database
        # connections. A frame needs no such hop: each database call of the gateway goes
        # through database_sync_to_async, which closes them around itself anyway.
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    # --- frames from the client -------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._registered:
            return
        # Each frame starts a trace: its log lines, Kafka headers and envelopes carry it.
        with tracing.bind(tracing.new_trace_id()):
            try:
                # A frame that never finishes (a hung dependency) would leave the socket
                # open and dead: frames of one socket are handled one after another.
                # asyncio.timeout, not wait_for: no extra task per frame.
                async with asyncio.timeout(settings.WS_FRAME_TIMEOUT_SECONDS):
                    await self._receive(text_data, bytes_data)
            except _PathBroken as exc:
                logger.error(
                    "ws_path_broken",
                    extra={"user_id": self.user_id, "connection_id": self.connection_id, "reason": exc.reason},
                    exc_info=exc.__cause__,
                )
                await self._fail(CLOSE_INTERNAL, exc.reason)
            except TimeoutError:
                logger.error("ws_frame_timeout", extra={"user_id": self.user_id, "connection_id": self.connection_id})
                await self._fail(CLOSE_INTERNAL, "frame timeout")

    async def _receive(self, text_data: str | None, bytes_data: bytes | None) -> None:
        self._last_activity = time.monotonic()
        client_msg_id = None
        echo = None
        try:
            # Parsed before the rate limit (orjson, bounded by WS_MAX_FRAME_BYTES) so that a
            # refused send-message names its client_msg_id.
            try:
                command = protocol.parse_frame(text_data, binary=bytes_data is not None)
            except errors.GoChatError:
                metrics.WS_FRAMES_IN.labels(type="invalid").inc()
                await self._check_rate()  # bad frames count too
                raise
            if isinstance(command, protocol.SendMessage):
                client_msg_id = command.client_msg_id
            else:
                echo = protocol.lifecycle_echo(command)
            await self._check_rate()
            metrics.WS_FRAMES_IN.labels(type=_COMMAND_TYPES.get(type(command), "other")).inc()
            if isinstance(command, protocol.SendMessage):
                await self._on_send_message(command)
            elif isinstance(command, protocol.Sync):
                await self._on_sync(command)
            elif isinstance(command, protocol.Read):
                await self._on_read(command)
            elif isinstance(command, protocol.Typing):
                await self._on_typing(command)
            elif isinstance(command, (protocol.EditMessage, protocol.RecallMessage)):
                await self._on_edit_or_recall(command)
            elif isinstance(command, (protocol.React, protocol.HideMessage)):
                await database_sync_to_async(_react_or_hide)(user_id=self.user_id, command=command)
            else:
                await self._on_ping()
        except errors.GoChatError as exc:
            await self.push_frame(protocol.error_frame_for(exc, client_msg_id=client_msg_id, echo=echo))
        except (_PathBroken, asyncio.CancelledError):
            raise
        except Exception as exc:
            logger.exception("ws_frame_failed", extra={"user_id": self.user_id, "connection_id": self.connection_id})
            await self.push_frame(protocol.error_frame_for(exc, client_msg_id=client_msg_id, echo=echo))

    async def _check_rate(self) -> None:
        """Raise RateLimited (1006) past WS_RATE_LIMIT frames of this user (every socket)."""
        allowed, retry_after = await get_limiter().acheck(self.user_id)
        if not allowed:
            raise errors.RateLimited("too many frames", {"retry_after": retry_after})

    async def _on_send_message(self, command: protocol.SendMessage) -> None:
        # Warm cache: no database, no thread hop. A miss reads the database in its thread.
        if not is_known_member(user_id=self.user_id, conversation_id=command.conversation_id):
            await database_sync_to_async(check_member)(user_id=self.user_id, conversation_id=command.conversation_id)
        trace_id = tracing.current_trace_id() or tracing.new_trace_id()
        upstream = pb.UpstreamMessage(
            trace_id=trace_id,
            gateway_id=settings.GATEWAY_ID,
            connection_id=self.connection_id,
            sender_id=self.user_id,
            conversation_id=command.conversation_id,
            client_msg_id=command.client_msg_id,
            content=command.content,
            message_type=command.message_type,
            attachment_id=command.attachment_id or 0,
            received_at_ms=int(time.time() * 1000),
            reply_to_id=command.reply_to or 0,
        )
        self._produce_upstream(upstream)
        metrics.MESSAGES_ACCEPTED.inc()
        delivery_trace.record(
            "accepted",
            trace_id=trace_id,
            conversation_id=command.conversation_id,
            sender_id=str(self.user_id),
            client_msg_id=command.client_msg_id,
            gateway=settings.GATEWAY_ID,
            connection_id=self.connection_id,
        )
        # Debug: an INFO line per message was ~14% of the embedded server's CPU under load.
        logger.debug(
            "ws_message_produced",
            extra={"user_id": self.user_id, "conversation_id": command.conversation_id, "trace_id": trace_id},
        )

    def _produce_upstream(self, upstream: pb.UpstreamMessage) -> None:
        if upstream_health.broken:
            raise _PathBroken("upstream unavailable")
        # Keyed by conversation: one conversation stays on one partition, so in order.
        try:
            get_producer().produce(
                settings.KAFKA_UPSTREAM_TOPIC,
                upstream.SerializeToString(),
                key=str(upstream.conversation_id),
                headers={"trace_id": upstream.trace_id},
            )
        except Exception as exc:
            raise _PathBroken("upstream unavailable") from exc

    async def _on_edit_or_recall(self, command: protocol.EditMessage | protocol.RecallMessage) -> None:
        # Upstream, on the conversation's partition: applied by the logic after every
        # earlier record of this conversation, so after the send it targets.
        if not is_known_member(user_id=self.user_id, conversation_id=command.conversation_id):
            await database_sync_to_async(check_member)(user_id=self.user_id, conversation_id=command.conversation_id)
        edit = isinstance(command, protocol.EditMessage)
        upstream = pb.UpstreamMessage(
            trace_id=tracing.current_trace_id() or tracing.new_trace_id(),
            gateway_id=settings.GATEWAY_ID,
            connection_id=self.connection_id,
            sender_id=self.user_id,
            conversation_id=command.conversation_id,
            content=command.content if edit else "",
            received_at_ms=int(time.time() * 1000),
            action=lifecycle.EDIT if edit else lifecycle.RECALL,
            target_message_id=command.message_id or 0,
            target_client_msg_id=command.client_msg_id or "",
        )
        self._produce_upstream(upstream)

    async def _on_sync(self, command: protocol.Sync) -> None:
        data = await database_sync_to_async(sync_page)(
            user_id=self.user_id, conversation_id=command.conversation_id, after_seq=command.after_seq, limit=command.limit
        )
        await self.push_frame(protocol.sync_result_frame(data))

    async def _on_read(self, command: protocol.Read) -> None:
        await database_sync_to_async(_read)(
            user_id=self.user_id,
            conversation_id=command.conversation_id,
            seq=command.seq,
            connection_id=self.connection_id,
        )

    async def _on_typing(self, command: protocol.Typing) -> None:
        # No reply on success: typing is fire-and-forget (gateway/typing.py).
        await relay_typing(user_id=self.user_id, user_name=self.user_name, conversation_id=command.conversation_id)

    async def _on_ping(self) -> None:
        try:
            await get_presence().aheartbeat(self.user_id, self.connection_id, settings.GATEWAY_ID)
        except Exception as exc:
            # Not refreshed, the entry expires and routing stops finding this socket:
            # served no longer, so closed for the client to reconnect.
            raise _PathBroken("presence unavailable") from exc
        await self.push_frame(protocol.pong_frame())

    # --- frames to the client (also called by downstream delivery) --------------------------
    def _remember(self, message_id: int) -> bool:
        """Record a delivered message id; False if this socket already had it."""
        if message_id in self._delivered:
            return False
        self._delivered[message_id] = None
        if len(self._delivered) > DELIVERED_MEMORY:
            self._delivered.popitem(last=False)
        return True

    async def push_frame(self, frame: dict[str, Any], *, delivered_id: int | None = None) -> None:
        if delivered_id is not None:
            self._remember(delivered_id)
        _frames_out(frame["type"]).inc()
        await self.send(text_data=protocol.encode(frame))

    async def push_encoded(self, frame: dict[str, Any], encoded: str) -> None:
        """A frame encoded once for many sockets (update frames)."""
        _frames_out(frame["type"]).inc()
        await self.send(text_data=encoded)

    async def push_new_message(self, frame: dict[str, Any], *, message_id: int, encoded: str | None = None) -> None:
        if self._remember(message_id):
            _frames_out(frame["type"]).inc()
            metrics.MESSAGES_DELIVERED.inc()
            await self.send(text_data=encoded if encoded is not None else protocol.encode(frame))
