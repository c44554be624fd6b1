"""Background loops of a gateway process, started with its first WebSocket: the
downstream consumer, the presence liveness heartbeat of this gateway, the membership
cache's invalidation listener (with Redis) and, in the
embedded default (settings.EMBEDDED_LOGIC), the logic consumer itself, so one daphne
process is a complete chat server."""
from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from gochat_site import metrics
from messaging import presence_push, routing
from messaging.consumers_registry import CONSUMERS, arun_consumer
from messaging.gateway.membership import run_invalidation_listener
from messaging.gateway import upstream
from messaging.gateway.registry import registry
from messaging.presence import get_presence

logger = logging.getLogger(__name__)


class _Loops:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []


_running: dict[asyncio.AbstractEventLoop, _Loops] = {}


async def _gateway_heartbeat(stop: asyncio.Event) -> None:
    # Presence hides a gateway's sessions once its liveness lapses (a crashed gateway);
    # a live one refreshes it well inside the TTL even when its sockets are quiet.
    interval = max(1.0, settings.PRESENCE_TTL_SECONDS / 3)
    while not stop.is_set():
        try:
            presence = get_presence()
            lost = await presence.agateway_heartbeat(settings.GATEWAY_ID)
            metrics.GATEWAY_HEARTBEAT.labels(gateway=settings.GATEWAY_ID).set(time.time())
            if len(registry):
                # Every live socket is registered again each beat, which also pushes its
                # entry's TTL forward: a socket that does not ping (it is still open until
                # WS_IDLE_TIMEOUT_SECONDS) stays reachable by routing instead of being
                # treated as offline once PRESENCE_TTL_SECONDS passes; and after Redis
                # came back empty (restart, flush) every socket is reachable again.
                connections = registry.pairs()
                await presence.arestore(settings.GATEWAY_ID, connections)
                # A socket that closed while its entry was being written again must not
                # be left looking online.
                live = set(registry.pairs())
                for user_id, connection_id in connections:
                    if (user_id, connection_id) not in live:
                        await presence.adisconnect(user_id, connection_id)
                if lost:
                    logger.warning(
                        "presence_restored", extra={"gateway_id": settings.GATEWAY_ID, "connections": len(connections)}
                    )
        except Exception:
            logger.exception("gateway_heartbeat_failed", extra={"gateway_id": settings.GATEWAY_ID})
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass


async def _close_idle_sockets(stop: asyncio.Event) -> None:
    """Close sockets that sent nothing for WS_IDLE_TIMEOUT_SECONDS: one sweep for the
    whole gateway, at most a second late (or a quarter of a short timeout)."""
    while not stop.is_set():
        timeout = settings.WS_IDLE_TIMEOUT_SECONDS
        now = time.monotonic()
        for connection in registry.connections():
            idle_for = getattr(connection, "idle_for", None)
            if idle_for is not None and idle_for(now) >= timeout:
                try:
                    await connection.close_idle()
                except Exception:
                    logger.exception("ws_idle_close_failed", extra={"connection_id": connection.connection_id})
        try:
            await asyncio.wait_for(stop.wait(), max(0.05, min(1.0, timeout / 4)))
        except asyncio.TimeoutError:
            pass


async def _push_presence(stop: asyncio.Event) -> None:
    """Every PRESENCE_PUSH_INTERVAL_SECONDS, push the presence changes of this gateway's
    users collected meanwhile (presence_push.py): one flush for all of them, in the
    database thread, never on a socket's frame path."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), max(0.05, float(settings.PRESENCE_PUSH_INTERVAL_SECONDS)))
        except asyncio.TimeoutError:
            pass
        changed = presence_push.changes.take()
        if not changed:
            continue
        try:
            await database_sync_to_async(routing.route_presence)(changed)
        except Exception:
            # Best effort: the conversation list shows the current state on its next load.
            logger.exception("presence_push_failed", extra={"users": len(changed)})


def _watch(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("gateway_loop_died", extra={"task": task.get_name()}, exc_info=task.exception())


async def ensure_started() -> None:
    """Start the loops on the running event loop, once."""
    loop = asyncio.get_running_loop()
    if loop in _running:
        return
    state = _Loops()
    _running[loop] = state
    coroutines = {
        "gateway-downstream": arun_consumer(CONSUMERS["gateway-downstream"], stop=state.stop),
        "gateway-heartbeat": _gateway_heartbeat(state.stop),
        "idle-sockets": _close_idle_sockets(state.stop),
        "presence-push": _push_presence(state.stop),
        "membership-invalidations": run_invalidation_listener(state.stop),
    }
    if settings.BUS_BACKEND != "memory":
        # The in-process bus cannot be unreachable; Kafka can.
        coroutines["upstream-watch"] = upstream.watch(state.stop)
    if settings.EMBEDDED_LOGIC:
        coroutines["embedded-logic"] = arun_consumer(CONSUMERS["logic"], stop=state.stop)
    for name, coroutine in coroutines.items():
        task = loop.create_task(coroutine, name=name)
        task.add_done_callback(_watch)
        state.tasks.append(task)
    logger.info("gateway_loops_started", extra={"gateway_id": settings.GATEWAY_ID, "loops": list(coroutines)})


async def stop() -> None:
    """Stop the loops of the running event loop and wait for them (tests, shutdown)."""
    state = _running.pop(asyncio.get_running_loop(), None)
    if state is None:
        return
    state.stop.set()
    await asyncio.gather(*state.tasks, return_exceptions=True)
