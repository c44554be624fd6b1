"""Presence in Redis: `user_session:{user_id}` hashes plus gateway liveness.

Keys:
- `user_session:{user_id}`: hash connection id -> gateway id; EXPIRE PRESENCE_TTL_SECONDS,
  refreshed by connect/heartbeat, so a user whose gateways all died vanishes on its own.
- `presence:gateways`: sorted set gateway id -> unix time until which it counts as alive,
  pushed forward by every connect/heartbeat/gateway_heartbeat of that gateway.
- `presence:gateway_users:{gateway_id}`: set of user ids with a session on that gateway,
  so sweep_gateway() finds its entries without scanning the keyspace.

Redis 7.0 has no per-field TTL, so the hash of a user who is also connected through a live
gateway keeps a crashed gateway's fields alive. lookup() therefore reads the sorted set in
the same pipeline and drops fields of gateways that are not alive; sweep_gateway() deletes
them for good. Every write and each lookup batch is one round trip.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.asyncio as aredis
from django.conf import settings

from gochat_site.redis_errors import AsyncPresenceConnection, PresenceConnection
from messaging.presence.base import Sessions

GATEWAYS_KEY = "presence:gateways"

# Removing a connection also removes the user from the gateway's set, unless the user
# still holds another connection on that same gateway. One atomic round trip.
_DISCONNECT_LUA = """
local gateway = redis.call('HGET', KEYS[1], ARGV[1])
if not gateway then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
for _, other in ipairs(redis.call('HVALS', KEYS[1])) do
  if other == gateway then return 1 end
end
redis.call('SREM', ARGV[3] .. gateway, ARGV[2])
return 1
"""


# A batch's lookup as one script: every user's sessions on a live gateway, as one string
# ("position US connection US gateway", records split by RS). The same answer as a pipeline
# of HGETALLs plus the live-gateway read, but redis-py packs and parses one command
# instead of one per user: for 1,000 users ~10 ms of the logic's CPU per group message
# was that parsing (docs/benchmarks.md). Positions, not ids, name the users: KEYS[1] is
# the gateway set, KEYS[i + 1] the i-th user's hash.
_LOOKUP_LUA = r"""
local alive = {}
for _, gateway in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  alive[gateway] = true
end
local out = {}
for i = 2, #KEYS do
  local fields = redis.call('HGETALL', KEYS[i])
  for j = 1, #fields, 2 do
    if alive[fields[j + 1]] then
      out[#out + 1] = (i - 1) .. '\31' .. fields[j] .. '\31' .. fields[j + 1]
    end
  end
end
return table.concat(out, '\30')
"""


def aredis_retry() -> Any:
    """Two quick retries on a connection error (a stale pooled connection, a restart)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)


def session_key(user_id: int) -> str:
    return f"user_session:{user_id}"


def gateway_users_key(gateway_id: str) -> str:
    return f"presence:gateway_users:{gateway_id}"


def _batches(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RedisPresence:
    def __init__(
        self,
        url: str,
        *,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url and client is None:
            raise ValueError("RedisPresence needs REDIS_URL")
        self._url = url
        # Wall-clock time, since gateway liveness is compared across hosts.
        self._clock = clock
        self._client = client or redis.Redis.from_url(url, decode_responses=True, connection_class=PresenceConnection)
        self._disconnect = self._client.register_script(_DISCONNECT_LUA)
        # redis.asyncio connections belong to the loop that opened them; one client per loop.
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _ttl(self) -> int:
        return int(settings.PRESENCE_TTL_SECONDS)

    def _aclient(self) -> aredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            # Bounded and blocking: a burst of connects (a gateway crash makes every client
            # reconnect at once) queues for a connection instead of failing with
            # MaxConnectionsError, which redis-py's default pool raises past 100.
            # Socket timeouts turn a Redis that vanished into an error the socket is
            # closed for (1011), never a call that hangs; the pool reconnects by itself.
            pool = aredis.BlockingConnectionPool.from_url(
                self._url,
                decode_responses=True,
                connection_class=AsyncPresenceConnection,
                max_connections=max(1, int(settings.PRESENCE_REDIS_MAX_CONNECTIONS)),
                timeout=float(settings.PRESENCE_REDIS_POOL_TIMEOUT_SECONDS),
                socket_timeout=float(settings.PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS),
                socket_connect_timeout=float(settings.PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS),
                health_check_interval=30,
                # After a Redis restart every pooled connection is stale: retry on a fresh
                # one instead of failing (and closing) the socket. Presence writes are
                # idempotent, so a retried pipeline is harmless.
                retry=aredis_retry(),
                retry_on_error=[redis.ConnectionError],
            )
            client = aredis.Redis(connection_pool=pool)
            self._aclients[loop] = client
        return client

    def _queue_register(self, pipe: Any, user_id: int, connection_id: str, gateway_id: str) -> None:
        ttl = self._ttl()
        key = session_key(user_id)
        pipe.hset(key, connection_id, gateway_id)
        pipe.expire(key, ttl)
        pipe.sadd(gateway_users_key(gateway_id), str(user_id))
        # A gateway registering or refreshing a connection is alive by definition.
        pipe.zadd(GATEWAYS_KEY, {gateway_id: self._clock() + ttl})

    def _live_count(self, sessions: dict[str, str], alive: list[str]) -> int:
        alive_set = set(alive)
        return sum(1 for gateway in sessions.values() if gateway in alive_set)

    def _lookup_args(self, batch: list[int]) -> list[Any]:
        """EVAL's arguments for one batch (one round trip, sent as EVAL so that a Redis
        that lost its script cache, after a restart, needs no second one)."""
        return [_LOOKUP_LUA, len(batch) + 1, GATEWAYS_KEY, *(session_key(u) for u in batch), f"({self._clock()}"]

    @staticmethod
    def _parse_script_lookup(batch: list[int], reply: str | None) -> Sessions:
        result: Sessions = {}
        if not reply:
            return result
        for record in reply.split("\x1e"):
            position, connection_id, gateway_id = record.split("\x1f")
            result.setdefault(batch[int(position) - 1], {})[connection_id] = gateway_id
        return result

    # --- sync -----------------------------------------------------------------------------
    def connect(self, user_id: int, connection_id: str, gateway_id: str) -> int:
        with self._client.pipeline(transaction=True) as pipe:
            self._queue_register(pipe, user_id, connection_id, gateway_id)
            pipe.hgetall(session_key(user_id))
            pipe.zrangebyscore(GATEWAYS_KEY, f"({self._clock()}", "+inf")
            replies = pipe.execute()
        return self._live_count(replies[-2], replies[-1])

    def heartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None:
        # Re-adds the field too: a connection whose hash expired during a stall (or that
        # a sweep removed while its gateway looked dead) is visible again.
        with self._client.pipeline(transaction=True) as pipe:
            self._queue_register(pipe, user_id, connection_id, gateway_id)
            pipe.execute()

    def gateway_heartbeat(self, gateway_id: str) -> None:
        self._client.zadd(GATEWAYS_KEY, {gateway_id: self._clock() + self._ttl()})

    def disconnect(self, user_id: int, connection_id: str) -> None:
        self._disconnect(keys=[session_key(user_id)], args=[connection_id, str(user_id), gateway_users_key("")])

    def lookup(self, user_ids: list[int]) -> Sessions:
        unique = list(dict.fromkeys(int(u) for u in user_ids))
        result: Sessions = {}
        for batch in _batches(unique, max(int(settings.PRESENCE_BATCH_SIZE), 1)):
            result.update(self._parse_script_lookup(batch, self._client.eval(*self._lookup_args(batch))))
        return result

    def dead_gateways(self) -> list[str]:
        return sorted(self._client.zrangebyscore(GATEWAYS_KEY, "-inf", self._clock()))

    def sweep_gateway(self, gateway_id: str) -> int:
        users_key = gateway_users_key(gateway_id)
        user_ids = sorted(int(u) for u in self._client.smembers(users_key))
        removed = 0
        for batch in _batches(user_ids, max(int(settings.PRESENCE_BATCH_SIZE), 1)):
            with self._client.pipeline(transaction=False) as pipe:
                for user_id in batch:
                    pipe.hgetall(session_key(user_id))
                replies = pipe.execute()
            with self._client.pipeline(transaction=False) as pipe:
                for user_id, sessions in zip(batch, replies):
                    # Connection ids are unique, so a field still naming this gateway is
                    # stale even if the user reconnected elsewhere meanwhile.
                    stale = [conn for conn, gw in sessions.items() if gw == gateway_id]
                    if stale:
                        pipe.hdel(session_key(user_id), *stale)
                        removed += len(stale)
                pipe.execute()
        with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(users_key)
            pipe.zrem(GATEWAYS_KEY, gateway_id)
            pipe.execute()
        return removed

    def close(self) -> None:
        self._client.close()

    # --- async (the gateway's event loop) -------------------------------------------------
    async def aconnect(self, user_id: int, connection_id: str, gateway_id: str) -> int:
        # Registration and the count of the user's live connections in one round trip:
        # the per-user socket cap is checked against every gateway.
        async with self._aclient().pipeline(transaction=True) as pipe:
            self._queue_register(pipe, user_id, connection_id, gateway_id)
            pipe.hgetall(session_key(user_id))
            pipe.zrangebyscore(GATEWAYS_KEY, f"({self._clock()}", "+inf")
            replies = await pipe.execute()
        return self._live_count(replies[-2], replies[-1])

    async def aheartbeat(self, user_id: int, connection_id: str, gateway_id: str) -> None:
        async with self._aclient().pipeline(transaction=True) as pipe:
            self._queue_register(pipe, user_id, connection_id, gateway_id)
            await pipe.execute()

    async def agateway_heartbeat(self, gateway_id: str) -> bool:
        """Refresh the gateway's liveness; True if Redis did not know it any more (a Redis
        restart or flush, or a sweep while it looked dead): its sessions are gone too."""
        added = await self._aclient().zadd(GATEWAYS_KEY, {gateway_id: self._clock() + self._ttl()})
        return bool(added)

    async def arestore(self, gateway_id: str, connections: list[tuple[int, str]]) -> None:
        """Register again every live connection of this gateway, one pipeline per batch."""
        for start in range(0, len(connections), max(int(settings.PRESENCE_BATCH_SIZE), 1)):
            async with self._aclient().pipeline(transaction=False) as pipe:
                for user_id, connection_id in connections[start : start + int(settings.PRESENCE_BATCH_SIZE)]:
                    self._queue_register(pipe, user_id, connection_id, gateway_id)
                await pipe.execute()

    async def adisconnect(self, user_id: int, connection_id: str) -> None:
        await self._aclient().eval(
            _DISCONNECT_LUA, 1, session_key(user_id), connection_id, str(user_id), gateway_users_key("")
        )

    async def alookup(self, user_ids: list[int]) -> Sessions:
        unique = list(dict.fromkeys(int(u) for u in user_ids))
        result: Sessions = {}
        for batch in _batches(unique, max(int(settings.PRESENCE_BATCH_SIZE), 1)):
            reply = await self._aclient().eval(*self._lookup_args(batch))
            result.update(self._parse_script_lookup(batch, reply))
        return result
