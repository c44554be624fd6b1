"""redis-py connection classes that count every failed connect, send and reply in
gochat_redis_errors_total{component, error}; GoChat's own Redis clients use them (cache,
presence, rate limit, delivery trace). Successful commands pay one try block."""
from __future__ import annotations

from typing import Any

import redis
import redis.asyncio.connection as aconnection
from redis.exceptions import RedisError


def _count(component: str, exc: BaseException) -> None:
    from gochat_site import metrics

    metrics.count_redis_error(component=component, error=type(exc).__name__)


class CountingConnection(redis.Connection):
    component = "redis"

    def connect(self, *args: Any, **kwargs: Any) -> None:
        try:
            return super().connect(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            return super().send_packed_command(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise


class AsyncCountingConnection(aconnection.Connection):
    component = "redis"

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        try:
            return await super().connect(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            return await super().send_packed_command(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except (RedisError, OSError) as exc:
            _count(self.component, exc)
            raise


class CacheConnection(CountingConnection):
    component = "cache"


class PresenceConnection(CountingConnection):
    component = "presence"


class AsyncPresenceConnection(AsyncCountingConnection):
    component = "presence"


class AsyncRateLimitConnection(AsyncCountingConnection):
    component = "ratelimit"


class TraceConnection(CountingConnection):
    component = "delivery_trace"
