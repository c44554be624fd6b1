"""The sockets this gateway process holds: user id -> its connections, connection id ->
connection. Only the event loop of the process touches it, so it needs no lock."""
from __future__ import annotations

from typing import Any, Protocol


class LocalConnection(Protocol):
    connection_id: str
    user_id: int

    async def push_frame(self, frame: dict[str, Any], *, delivered_id: int | None = None) -> None:
        """Write a server frame; delivered_id marks the socket as having that message."""

    async def push_new_message(self, frame: dict[str, Any], *, message_id: int, encoded: str | None = None) -> None:
        """Write a new-message frame unless this socket already had that message
        (`encoded`: the frame already encoded, shared by every recipient)."""


class ConnectionRegistry:
    def __init__(self) -> None:
        self._by_user: dict[int, dict[str, LocalConnection]] = {}
        self._by_id: dict[str, LocalConnection] = {}

    def add(self, connection: LocalConnection) -> None:
        self._by_user.setdefault(connection.user_id, {})[connection.connection_id] = connection
        self._by_id[connection.connection_id] = connection

    def remove(self, connection: LocalConnection) -> None:
        self._by_id.pop(connection.connection_id, None)
        sockets = self._by_user.get(connection.user_id)
        if sockets is not None:
            sockets.pop(connection.connection_id, None)
            if not sockets:
                del self._by_user[connection.user_id]

    def connections(self) -> list[LocalConnection]:
        return list(self._by_id.values())

    def get(self, connection_id: str) -> LocalConnection | None:
        return self._by_id.get(connection_id)

    def of_user(self, user_id: int) -> list[LocalConnection]:
        return list(self._by_user.get(user_id, {}).values())

    def pairs(self) -> list[tuple[int, str]]:
        """(user id, connection id) of every socket (presence restore after a Redis restart)."""
        return [(c.user_id, c.connection_id) for c in self._by_id.values()]

    def user_count(self) -> int:
        return len(self._by_user)

    def __len__(self) -> int:
        return len(self._by_id)


# One per process: every gateway socket of this process is in here.
registry = ConnectionRegistry()
