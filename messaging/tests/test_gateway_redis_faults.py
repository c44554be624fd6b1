"""The gateway on Redis presence under bursts and restarts (issue 8 items 2 and 3): a burst
of connects waits for the bounded presence pool instead of failing, and a socket whose
presence path broke is closed with 1011 (never left open and dead) while the pool
reconnects by itself once Redis is back."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import pytest
import redis

from tests.harness.stack import free_port

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30


async def _ping(ws, timeout: float = WAIT) -> dict:
    """The pong, or the close output if the server closed the socket instead."""
    await ws.send_to(text_data=json.dumps({"type": "ping"}))
    output = await ws.receive_output(timeout=timeout)
    if output["type"] == "websocket.send":
        return json.loads(output["text"])
    return output


@pytest.fixture
def users(db):
    """n active users, created in one statement (no password hashing: they use tokens)."""
    import uuid

    from accounts.models import User

    def factory(n: int):
        run = uuid.uuid4().hex[:8]
        people = [User(username=f"burst{run}_{i}", password="!") for i in range(n)]
        User.objects.bulk_create(people)
        return list(User.objects.filter(username__startswith=f"burst{run}_"))

    return factory


@pytest.mark.redis
async def test_300_concurrent_connects_and_pings_are_all_answered(ws_client, users, settings, redis_presence):
    from channels.db import database_sync_to_async

    # A pool far smaller than the burst: callers must queue for it, never fail.
    settings.PRESENCE_REDIS_MAX_CONNECTIONS = 10
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    people = await database_sync_to_async(users)(300)
    sockets = await asyncio.gather(*(ws_client(user) for user in people))
    replies = await asyncio.gather(*(_ping(ws) for ws in sockets))
    kinds = [reply.get("type") for reply in replies]
    assert kinds.count("pong") == 300, [r for r in replies if r.get("type") != "pong"][:3]
    sessions = await redis_presence.alookup([user.id for user in people])
    assert len(sessions) == 300
    await asyncio.gather(*(ws.disconnect() for ws in sockets))


# --- a private Redis, restarted mid-test -----------------------------------------------------


class PrivateRedis:
    def __init__(self, port: int, tmpdir) -> None:  # noqa: ANN001 - a pytest tmp_path
        self.port = port
        self.dir = tmpdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path, settings):
    from messaging.gateway import membership
    from messaging.gateway.ratelimit import reset_limiters
    from messaging.presence import reset_presence

    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    settings.PRESENCE_BACKEND = "redis"
    settings.WS_RATE_LIMIT_BACKEND = "redis"
    settings.PRESENCE_REDIS_SOCKET_TIMEOUT_SECONDS = 1.0
    settings.PRESENCE_REDIS_POOL_TIMEOUT_SECONDS = 2.0
    reset_presence()
    reset_limiters()
    membership.reset_cache()
    yield server
    server.stop()
    reset_presence()
    reset_limiters()
    membership.reset_cache()


async def test_redis_restart_closes_broken_sockets_1011_and_serves_after(ws_client, users, private_redis):
    from channels.db import database_sync_to_async

    people = await database_sync_to_async(users)(4)
    sockets = [await ws_client(user) for user in people]
    for ws in sockets:
        assert (await _ping(ws))["type"] == "pong"

    private_redis.stop()
    # Pinged while Redis is gone: the heartbeat fails, the socket is closed with a code
    # and a reason (the client reconnects), not left open and silently unserved.
    for ws in sockets[:2]:
        reply = await _ping(ws)
        assert reply == {"type": "websocket.close", "code": 1011, "reason": "presence unavailable"}
    # A connect while Redis is gone is closed the same way.
    output = await (await ws_client(people[0], connect=True)).receive_output(timeout=WAIT)
    assert output == {"type": "websocket.close", "code": 1011, "reason": "presence unavailable"}

    private_redis.start()
    # Sockets that did not ping during the outage are served again: the pool reconnected.
    for ws in sockets[2:]:
        assert (await _ping(ws))["type"] == "pong"
    # And a client that reconnects after its 1011 is served.
    again = await ws_client(people[0])
    assert (await _ping(again))["type"] == "pong"
    sessions = redis.Redis.from_url(private_redis.url, decode_responses=True).hgetall(f"user_session:{people[0].id}")
    assert len(sessions) == 1


async def test_sockets_that_do_not_ping_are_registered_again_after_a_redis_restart(
    ws_client, users, private_redis, settings
):
    from channels.db import database_sync_to_async

    from messaging.presence import get_presence

    settings.PRESENCE_TTL_SECONDS = 3  # the gateway heartbeat runs every second
    people = await database_sync_to_async(users)(3)
    for user in people:
        # The pong also means the gateway finished registering the socket after accept.
        assert (await _ping(await ws_client(user)))["type"] == "pong"
    ids = [user.id for user in people]
    assert len(await get_presence().alookup(ids)) == 3

    private_redis.stop()
    private_redis.start()  # empty: no persistence
    assert await get_presence().alookup(ids) == {}
    # Without a single client frame, the gateway notices Redis lost it and restores them:
    # routing finds these sockets again.
    for _ in range(100):
        if len(await get_presence().alookup(ids)) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(await get_presence().alookup(ids)) == 3


async def test_a_socket_that_does_not_ping_stays_reachable_past_the_presence_ttl(ws_client, users, private_redis, settings):
    # Seen in the rolling-restart test: a peer that never pinged was routed as offline
    # (push) once its presence entry expired, while its socket was still open.
    from channels.db import database_sync_to_async

    from messaging.presence import get_presence

    settings.PRESENCE_TTL_SECONDS = 2  # the gateway heartbeat runs every second
    (person,) = await database_sync_to_async(users)(1)
    assert (await _ping(await ws_client(person)))["type"] == "pong"
    await asyncio.sleep(3 * settings.PRESENCE_TTL_SECONDS)  # no client frame at all
    assert person.id in await get_presence().alookup([person.id])
