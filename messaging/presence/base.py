"""Presence (OnlineStatusService): which gateway holds each live connection of a user.

Redis hash `user_session:{user_id}` maps connection id -> gateway id, with a TTL that
heartbeats refresh; presence/redis.py implements it, presence/memory.py is the
in-process twin for the embedded default. Lookups are batched: one round trip for up
to PRESENCE_BATCH_SIZE users.
"""
from __future__ import annotations

from typing import Protocol

# user id -> {connection id: gateway id}; users with no live connection are absent.
Sessions = dict[int, dict[str, str]]


class Presence(Protocol):
    def connect(self, user_id: int, connection_id: str, gateway_id: str) -> int:
        """Register a connection; return the user's live connections (this one included)."""

    def heartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None: ...

    def disconnect(self, user_id: int, connection_id: str) -> None: ...

    def lookup(self, user_ids: list[int]) -> Sessions:
        """Live sessions of the given users, one round trip per batch."""

    def sweep_gateway(self, gateway_id: str) -> int:
        """Remove the entries of a dead gateway; return how many were removed."""

    def gateway_heartbeat(self, gateway_id: str) -> None:
        """Mark the gateway alive for PRESENCE_TTL_SECONDS (connect/heartbeat do it too)."""

    def dead_gateways(self) -> list[str]:
        """Gateways whose liveness lapsed and whose entries still await sweep_gateway()."""

    # Async twins for the gateway's event loop.
    async def aconnect(self, user_id: int, connection_id: str, gateway_id: str) -> int: ...

    async def aheartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None: ...

    async def adisconnect(self, user_id: int, connection_id: str) -> None: ...

    async def agateway_heartbeat(self, gateway_id: str) -> bool:
        """Refresh liveness; True if the backend had lost the gateway (and its sessions)."""

    async def arestore(self, gateway_id: str, connections: list[tuple[int, str]]) -> None:
        """Register (user id, connection id) pairs of this gateway again, in batches."""

    async def alookup(self, user_ids: list[int]) -> Sessions: ...
