"""In-process presence for the embedded default, with the Redis backend's semantics.

Each user's sessions expire together PRESENCE_TTL_SECONDS after the last connect/heartbeat
(the Redis hash has one TTL, not one per field), and sessions held by a gateway whose
liveness lapsed are invisible to lookup() until sweep_gateway() deletes them. Time is
time.monotonic(), so wall-clock jumps cannot expire or revive anyone.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.conf import settings

from messaging.presence.base import Sessions


class MemoryPresence:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # The clock is injectable so tests can step past a TTL without sleeping.
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[int, dict[str, str]] = {}
        self._session_expiry: dict[int, float] = {}
        self._gateway_expiry: dict[str, float] = {}

    def _ttl(self) -> float:
        return float(settings.PRESENCE_TTL_SECONDS)

    def _expire(self, user_id: int, now: float) -> None:
        if self._session_expiry.get(user_id, now + 1) <= now:
            self._sessions.pop(user_id, None)
            self._session_expiry.pop(user_id, None)

    def _gateway_alive(self, gateway_id: str, now: float) -> bool:
        return self._gateway_expiry.get(gateway_id, now) > now

    # --- writes ---------------------------------------------------------------------------
    def connect(self, user_id: int, connection_id: str, gateway_id: str) -> int:
        """Register; return how many live connections the user now has (this one included)."""
        now = self._clock()
        expiry = now + self._ttl()
        with self._lock:
            self._expire(user_id, now)
            sessions = self._sessions.setdefault(user_id, {})
            sessions[connection_id] = gateway_id
            self._session_expiry[user_id] = expiry
            # A gateway registering or refreshing a connection is alive by definition.
            self._gateway_expiry[gateway_id] = expiry
            return sum(1 for gateway in sessions.values() if self._gateway_alive(gateway, now))

    def heartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None:
        # Re-adds the entry too, so a connection whose hash expired during a stall
        # becomes visible again on its next heartbeat.
        self.connect(user_id, connection_id, gateway_id)

    def gateway_heartbeat(self, gateway_id: str) -> None:
        now = self._clock()
        with self._lock:
            self._gateway_expiry[gateway_id] = now + self._ttl()

    def disconnect(self, user_id: int, connection_id: str) -> None:
        with self._lock:
            sessions = self._sessions.get(user_id)
            if sessions is None:
                return
            sessions.pop(connection_id, None)
            if not sessions:
                self._sessions.pop(user_id, None)
                self._session_expiry.pop(user_id, None)

    def sweep_gateway(self, gateway_id: str) -> int:
        removed = 0
        now = self._clock()
        with self._lock:
            for user_id in list(self._sessions):
                self._expire(user_id, now)
                # An expired hash is gone in Redis too: nothing of it to count.
                sessions = self._sessions.get(user_id)
                if sessions is None:
                    continue
                for connection_id in [c for c, g in sessions.items() if g == gateway_id]:
                    del sessions[connection_id]
                    removed += 1
                if not sessions:
                    self._sessions.pop(user_id, None)
                    self._session_expiry.pop(user_id, None)
            self._gateway_expiry.pop(gateway_id, None)
        return removed

    # --- reads ----------------------------------------------------------------------------
    def lookup(self, user_ids: list[int]) -> Sessions:
        now = self._clock()
        result: Sessions = {}
        with self._lock:
            for user_id in user_ids:
                self._expire(user_id, now)
                live = {
                    connection_id: gateway_id
                    for connection_id, gateway_id in self._sessions.get(user_id, {}).items()
                    if self._gateway_alive(gateway_id, now)
                }
                if live:
                    result[user_id] = live
        return result

    def dead_gateways(self) -> list[str]:
        """Gateways whose liveness lapsed but whose entries were not swept yet."""
        now = self._clock()
        with self._lock:
            return sorted(g for g, expiry in self._gateway_expiry.items() if expiry <= now)

    # --- async twins: the state is in-process, so no thread hop is needed -----------------
    async def aconnect(self, user_id: int, connection_id: str, gateway_id: str) -> int:
        return self.connect(user_id, connection_id, gateway_id)

    async def aheartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None:
        self.heartbeat(user_id, connection_id, gateway_id)

    async def adisconnect(self, user_id: int, connection_id: str) -> None:
        self.disconnect(user_id, connection_id)

    async def agateway_heartbeat(self, gateway_id: str) -> bool:
        with self._lock:
            known = gateway_id in self._gateway_expiry
        self.gateway_heartbeat(gateway_id)
        return not known

    async def arestore(self, gateway_id: str, connections: list[tuple[int, str]]) -> None:
        for user_id, connection_id in connections:
            self.connect(user_id, connection_id, gateway_id)

    async def alookup(self, user_ids: list[int]) -> Sessions:
        return self.lookup(user_ids)
