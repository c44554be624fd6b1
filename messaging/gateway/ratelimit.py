"""Per-user frame rate limit of the gateway: WS_RATE_LIMIT frames per WS_RATE_WINDOW_SECONDS.

Two backends (WS_RATE_LIMIT_BACKEND):
- "redis" (production): one counter per user in Redis, shared by every socket on every
  gateway, so a flood spread over sockets and gateways is limited per user. A fixed
  window: a Lua script INCRBYs `ratelimit:ws:{user_id}`, starts its PEXPIRE on the first
  frame of a window, and returns the count and the time left.
  Frames are counted in process first, and Redis is asked only once this gateway has seen
  more than WS_RATE_LIMIT / WS_MAX_CONNECTIONS_PER_USER of the user's frames in the
  window (then with the frames counted so far, and one round trip per frame after). A
  user has at most that many sockets, so their frames that never reach Redis are fewer
  than WS_RATE_LIMIT in all: the limit still holds per user (at worst, with sockets on
  many gateways, about twice over), and an ordinary user costs no round trip at all. The
  round trip per frame was ~12% of the gateway's CPU in the S1 benchmark.
  If Redis cannot answer, the process falls back to its in-memory window (fail open to a
  per-process limit rather than refusing every frame or closing sockets for it).
- "memory" (embedded default, one process): the same fixed window in a dict.
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Forget idle users' windows once the table grows past this many entries.
_PRUNE_AT = 10_000

_WINDOW_LUA = """
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


def rate_key(user_id: int) -> str:
    return f"ratelimit:ws:{user_id}"


class RateLimiter:
    """In-process fixed window per user."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[int, tuple[float, int]] = {}

    def count(self, user_id: int) -> int:
        """Count one frame; the user's frames in the current window, this one included."""
        now = self._clock()
        window = settings.WS_RATE_WINDOW_SECONDS
        started, count = self._windows.get(user_id, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += 1
        self._windows[user_id] = (started, count)
        if len(self._windows) > _PRUNE_AT:
            self._prune(now, window)
        return count

    def allow(self, user_id: int) -> bool:
        """Count one frame; False once the user is past WS_RATE_LIMIT in this window."""
        return self.count(user_id) <= settings.WS_RATE_LIMIT

    def retry_after(self, user_id: int) -> float:
        started, _ = self._windows.get(user_id, (self._clock(), 0))
        return max(0.0, round(started + settings.WS_RATE_WINDOW_SECONDS - self._clock(), 3))

    async def acheck(self, user_id: int) -> tuple[bool, float]:
        """(allowed, retry_after seconds) for one frame."""
        if self.allow(user_id):
            return True, 0.0
        return False, self.retry_after(user_id)

    def _prune(self, now: float, window: float) -> None:
        for user_id in [u for u, (started, _) in self._windows.items() if now - started >= window]:
            del self._windows[user_id]


class RedisRateLimiter:
    """Fixed window per user in Redis: the limit holds across sockets and gateways."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._clock = clock
        self._fallback = RateLimiter()
        # The user's frames seen by this gateway in its own window (module docstring).
        self._local = RateLimiter(clock)
        # redis.asyncio connections belong to the loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _client(self) -> Any:
        import redis
        import redis.asyncio as aredis

        from gochat_site.redis_errors import AsyncRateLimitConnection
        from messaging.presence.redis import aredis_retry

        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            pool = aredis.BlockingConnectionPool.from_url(
                self._url,
                connection_class=AsyncRateLimitConnection,
                max_connections=max(1, int(settings.PRESENCE_REDIS_MAX_CONNECTIONS)),
                timeout=float(settings.PRESENCE_REDIS_POOL_TIMEOUT_SECONDS),
                socket_timeout=float(settings.PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS),
                socket_connect_timeout=float(settings.PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS),
                retry=aredis_retry(),
                retry_on_error=[redis.ConnectionError],
            )
            client = aredis.Redis(connection_pool=pool)
            client.window_script = client.register_script(_WINDOW_LUA)
            self._clients[loop] = client
        return client

    def _count_locally(self, user_id: int) -> int:
        """How many frames to add to the Redis counter now: 0 while the user is within
        this gateway's quiet share of the window, then everything counted so far once,
        then 1 per frame."""
        count = self._local.count(user_id)
        quiet = settings.WS_RATE_LIMIT // max(1, settings.WS_MAX_CONNECTIONS_PER_USER)
        if count <= quiet:
            return 0
        return count if count == quiet + 1 else 1

    async def acheck(self, user_id: int) -> tuple[bool, float]:
        increment = self._count_locally(user_id)
        if not increment:
            return True, 0.0
        window_ms = max(1, int(settings.WS_RATE_WINDOW_SECONDS * 1000))
        try:
            client = self._client()
            count, ttl_ms = await client.window_script(keys=[rate_key(user_id)], args=[window_ms, increment])
        except Exception:  # noqa: BLE001 - Redis trouble must not refuse or close sockets
            logger.warning("ws_rate_limit_redis_failed", extra={"user_id": user_id}, exc_info=True)
            return await self._fallback.acheck(user_id)
        if int(count) <= settings.WS_RATE_LIMIT:
            return True, 0.0
        return False, round(max(0, int(ttl_ms)) / 1000, 3)


_limiters: dict[tuple[str, str], RateLimiter | RedisRateLimiter] = {}


def get_limiter() -> RateLimiter | RedisRateLimiter:
    """The limiter of this process for the configured backend (read at call time)."""
    backend = settings.WS_RATE_LIMIT_BACKEND
    if backend not in {"memory", "redis"}:
        raise ValueError(f"WS_RATE_LIMIT_BACKEND must be 'memory' or 'redis', not {backend!r}")
    key = (backend, settings.REDIS_URL if backend == "redis" else "")
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = RedisRateLimiter(settings.REDIS_URL) if backend == "redis" else RateLimiter()
        _limiters[key] = limiter
    return limiter


def reset_limiters() -> None:
    """Tests: forget every window."""
    _limiters.clear()
