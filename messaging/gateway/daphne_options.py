"""WebSocket wire behaviour of the gateway under daphne (autobahn on Twisted).

daphne builds its autobahn factory inside Server.run() with fixed options and offers no
hook, so `apply()` (called by gochat_site/asgi.py, which every launcher imports before the
server starts: `daphne gochat_site.asgi:application`, runserver, the harness) adjusts
daphne's classes once:

- failByDrop=False. autobahn's default *drops the TCP connection* on a protocol error, so
  a message over daphne's 1 MiB limit (`--websocket_max_message_size`) or an invalid UTF-8
  text frame left the client with no close code. With it off autobahn sends the RFC 6455
  close frame first: 1009 "message too big", 1007 "invalid payload", 1002 protocol error.
- Close frames as the application asked: daphne passes only the code to autobahn's
  sendClose, which drops the reason and refuses 1011; the gateway's reasons ("presence
  unavailable", "too many connections") and 1011 reach the client as sent.
- Frames written straight to the socket. A frame through autobahn's sendMessage/sendFrame/
  sendData cost ~50 us at peerbench s2k (1,000 frames per group message): debug-log
  arguments formatted for every frame although nothing logs them, then Twisted's write,
  which never sends at once but registers the socket with the event loop (an epoll_ctl)
  and sends on a later turn (another epoll_ctl to unregister). `serverSend` builds the
  unmasked, unfragmented, uncompressed frame itself (what autobahn sends for a server
  without permessage-deflate, which daphne never negotiates) and, when Twisted holds
  nothing for the socket, sends it at once as asyncio's transports do; whatever the
  kernel does not take, and every frame while Twisted holds bytes, goes through Twisted's
  buffer, so frames keep their order and the slow-consumer bound below still applies.
- Slow consumers. Twisted buffers whatever is written to a socket that does not read,
  without limit. GatewayWebSocketProtocol checks the transport's queued bytes after each
  frame; past WS_MAX_SEND_BUFFER_BYTES it drops later frames, queues a close frame 4010
  "slow consumer" (a client that resumes reading sees it after what was queued) and
  autobahn aborts the connection SLOW_CONSUMER_GRACE_SECONDS later if the client has not
  answered the close (its close-handshake timeout, raised for this close).

Other servers (uvicorn) do not import daphne's protocol; apply() does nothing if daphne
is not installed.
"""
from __future__ import annotations

import logging
import struct
from typing import Any

logger = logging.getLogger(__name__)

# Time a slow consumer gets to read what is queued plus the 4010 close frame.
SLOW_CONSUMER_GRACE_SECONDS = 10.0
CLOSE_SLOW_CONSUMER = 4010

_applied = False


def queued_bytes(transport: Any) -> int:
    """Bytes Twisted holds for a TCP transport (written by us, not yet taken by the kernel)."""
    data = getattr(transport, "dataBuffer", b"")
    offset = getattr(transport, "offset", 0)
    temp = getattr(transport, "_tempDataLen", 0)
    try:
        return len(data) - offset + temp
    except TypeError:
        return 0


def frame_bytes(payload: bytes, *, binary: bool) -> bytes:
    """One final, unmasked RFC 6455 data frame (a server's frames are never masked)."""
    first = 0x82 if binary else 0x81
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 0x10000:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


def send_now(transport: Any, data: bytes) -> None:
    """Write `data` to a Twisted TCP transport: straight to the socket when Twisted holds
    nothing for it (what the kernel does not take is left to Twisted), else behind what
    Twisted holds. TLS and anything that is not a plain connected socket go through
    transport.write()."""
    sock = getattr(transport, "socket", None)
    if (
        sock is None
        or getattr(transport, "TLS", False)
        or not getattr(transport, "connected", False)
        or getattr(transport, "disconnecting", True)
        or getattr(transport, "_writeDisconnected", True)
        or queued_bytes(transport)
    ):
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # A reset or broken pipe: Twisted's own write meets it and closes the connection.
        transport.write(data)
        return
    if sent < len(data):
        transport.write(data[sent:])


def apply() -> None:
    global _applied
    if _applied:
        return
    try:
        from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
    except ImportError:  # pragma: no cover - another ASGI server without daphne installed
        return
    from django.conf import settings

    class GatewayWebSocketProtocol(WebSocketProtocol):
        _slow_closing = False

        def handle_reply(self, message: dict[str, Any]) -> None:
            # daphne closes through autobahn's sendClose, which drops the reason and
            # refuses 1011 (a server may send it, RFC 6455 7.4.1): send the frame as asked.
            if message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
                reason = (message.get("reason") or "").encode("utf-8")[:123]
                self.sendCloseFrame(code=message.get("code") or 1000, reasonUtf8=reason or None, isReply=False)
                return
            super().handle_reply(message)

        def serverSend(self, content: Any, binary: bool = False) -> None:  # noqa: N802 - daphne's name
            if self._slow_closing:
                return  # bounded: nothing more is queued for a socket being closed as slow
            payload = content if binary else content.encode("utf-8")
            if self._can_send_directly(len(payload)):
                send_now(self.transport, frame_bytes(payload, binary=binary))
            else:
                super().serverSend(content, binary)
            limit = settings.WS_MAX_SEND_BUFFER_BYTES
            if limit and self.transport is not None and queued_bytes(self.transport) > limit:
                self._close_slow_consumer(limit)

        def _can_send_directly(self, length: int) -> bool:
            """What autobahn would send as one plain frame: an open connection, nothing in
            autobahn's own send queue, no compression, fragmentation or frame logging, and
            within the message size limit (autobahn raises past it)."""
            return (
                self.state == self.STATE_OPEN
                and self.transport is not None
                and not self.send_queue
                and self._perMessageCompress is None
                and not self.autoFragmentSize
                and not self.logFrames
                and not self.logOctets
                and not self.factory.maskServerFrames
                and not (0 < self.maxMessagePayloadSize < length)
            )

        def _close_slow_consumer(self, limit: int) -> None:
            self._slow_closing = True
            logger.warning(
                "ws_slow_consumer",
                extra={"queued_bytes": queued_bytes(self.transport), "limit": limit, "client": str(self.client_addr)},
            )
            # The grace is autobahn's close-handshake timer: it aborts the TCP connection
            # when the peer has not answered the close in closeHandshakeTimeout, 1 s by
            # default, too short for a client to read the megabytes queued before the
            # close frame (kernel and Twisted buffers): it lost the 4010 under load.
            self.closeHandshakeTimeout = SLOW_CONSUMER_GRACE_SECONDS
            self.sendCloseFrame(code=CLOSE_SLOW_CONSUMER, reasonUtf8=b"slow consumer", isReply=False)

    original_options = WebSocketFactory.setProtocolOptions

    def set_protocol_options(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("failByDrop", False)
        original_options(self, *args, **kwargs)

    WebSocketFactory.setProtocolOptions = set_protocol_options
    WebSocketFactory.protocol = GatewayWebSocketProtocol
    _drain_before_daphne_kills_applications()
    _applied = True


def _drain_before_daphne_kills_applications() -> None:
    """On SIGTERM daphne's shutdown hook cancels every application instance at once, so
    sockets were dropped without a close frame (clients saw 1006 and could not tell a
    restart from a crash). Run the gateway's drain (1012 to every socket, presence left,
    /readyz 503; messaging/gateway/drain.py) first, then daphne's own hook."""
    import asyncio

    from daphne.server import Server

    original_kill = Server.kill_all_applications

    def kill_all_applications(self: Any) -> Any:
        from twisted.internet import defer

        from messaging.gateway import drain

        drained = defer.Deferred.fromFuture(asyncio.ensure_future(drain.drain()))
        drained.addErrback(lambda failure: logger.error("gateway_drain_failed", extra={"error": str(failure)}))
        drained.addBoth(lambda _: original_kill(self))
        return drained

    Server.kill_all_applications = kill_all_applications
