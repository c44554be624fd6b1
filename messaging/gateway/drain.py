"""Draining a gateway before it stops (SIGTERM, a rolling upgrade, scale-down).

While draining, /readyz answers 503 (the load balancer stops sending new connections),
new WebSocket connections are accepted and closed at once, and every live socket is closed
with 1012 "Service Restart" (RFC 6455 registry: the server is restarting, reconnect) and
the reason `gateway draining`, spread over WS_DRAIN_SECONDS so a gateway's clients do not
all reconnect to the others in the same instant. Each closed socket leaves presence at
once, so routing stops sending to this gateway. Clients reconnect (to another gateway
behind the balancer) and sync from their last seq, so nothing is missed; sends not yet
acknowledged are resent by the client with their client_msg_id (de-duplicated).

Under daphne, daphne_options.apply() runs `drain()` from daphne's own shutdown hook before
daphne cancels the application instances (which would drop the sockets without a close
frame: clients saw 1006).
"""
from __future__ import annotations

import asyncio
import logging

from django.conf import settings

logger = logging.getLogger(__name__)

CLOSE_SERVICE_RESTART = 1012
DRAIN_REASON = "gateway draining"

_draining = False


def is_draining() -> bool:
    return _draining


def reset() -> None:
    """Tests: leave the draining state."""
    global _draining
    _draining = False


async def drain(*, seconds: float | None = None) -> int:
    """Stop taking sockets and close every local one with 1012; returns how many were
    closed. Idempotent: a second call closes whatever connected since."""
    from messaging.gateway.registry import registry

    global _draining
    _draining = True
    window = settings.WS_DRAIN_SECONDS if seconds is None else seconds
    connections = registry.connections()
    logger.info("gateway_draining", extra={"gateway_id": settings.GATEWAY_ID, "sockets": len(connections),
                                           "seconds": window})
    pause = window / len(connections) if connections and window > 0 else 0.0
    closed = 0
    for connection in connections:
        try:
            await connection.close_for_drain()
            closed += 1
        except Exception:  # noqa: BLE001 - a socket already gone must not stop the drain
            logger.warning("gateway_drain_close_failed", exc_info=True)
        if pause:
            await asyncio.sleep(pause)
    logger.info("gateway_drained", extra={"gateway_id": settings.GATEWAY_ID, "closed": closed})
    return closed
