"""Per-user frame rate limit of a gateway process (fixed window, in memory).

The limit counts every frame a user sends through this process, whatever the socket.
A user with sockets on several gateways gets the limit once per gateway: the limit is
there to protect this process and the bus from a flood, not to meter a user globally.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

# Forget idle users' windows once the table grows past this many entries.
_PRUNE_AT = 10_000


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[int, tuple[float, int]] = {}

    def allow(self, user_id: int) -> bool:
        """Count one frame; False once the user is past WS_RATE_LIMIT in this window."""
        now = self._clock()
        window = settings.WS_RATE_WINDOW_SECONDS
        started, count = self._windows.get(user_id, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += 1
        self._windows[user_id] = (started, count)
        if len(self._windows) > _PRUNE_AT:
            self._prune(now, window)
        return count <= settings.WS_RATE_LIMIT

    def retry_after(self, user_id: int) -> float:
        started, _ = self._windows.get(user_id, (self._clock(), 0))
        return max(0.0, round(started + settings.WS_RATE_WINDOW_SECONDS - self._clock(), 3))

    def _prune(self, now: float, window: float) -> None:
        for user_id in [u for u, (started, _) in self._windows.items() if now - started >= window]:
            del self._windows[user_id]


# One per process, shared by every socket of the process.
limiter = RateLimiter()
