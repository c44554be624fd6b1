"""Load shedding at the gateway (issue 8): the per-user frame limit holds across sockets and
gateways (Redis), a refused send names its client_msg_id, and sockets per user are capped
across gateways through presence."""
from __future__ import annotations

import json

import pytest

from messaging.gateway import ratelimit

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10


async def _frame(ws, kind: str, data: dict | None = None) -> dict:
    await ws.send_to(text_data=json.dumps({"type": kind, "data": data or {}}))
    return json.loads(await ws.receive_from(timeout=WAIT))


@pytest.fixture
def fresh_limiters():
    ratelimit.reset_limiters()
    yield
    ratelimit.reset_limiters()


@pytest.fixture
def clear_rate_keys(settings):
    import redis

    def clear() -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        keys = list(client.scan_iter(match="ratelimit:ws:*"))
        if keys:
            client.delete(*keys)
        client.close()

    clear()
    yield
    clear()


async def test_rate_limited_send_carries_its_client_msg_id(ws_client, alice, single_chat, settings, fresh_limiters):
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    settings.WS_RATE_LIMIT = 1
    settings.WS_RATE_WINDOW_SECONDS = 60
    ws = await ws_client(alice)
    assert (await _frame(ws, "ping"))["type"] == "pong"
    error = await _frame(
        ws, "send-message", {"client_msg_id": "c-42", "conversation_id": str(single_chat.id), "content": "x"}
    )
    assert error["data"]["code"] == 1006
    assert error["data"]["client_msg_id"] == "c-42"
    assert error["data"]["details"]["retry_after"] > 0


@pytest.mark.redis
async def test_limit_is_per_user_across_sockets_and_gateways(
    ws_client, alice, bob, settings, redis_presence, fresh_limiters, clear_rate_keys
):
    settings.WS_RATE_LIMIT_BACKEND = "redis"
    settings.WS_RATE_LIMIT = 4
    settings.WS_RATE_WINDOW_SECONDS = 60
    phone = await ws_client(alice)
    laptop = await ws_client(alice)
    # A second gateway process has its own limiter object; the count is shared in Redis.
    other_gateway = ratelimit.RedisRateLimiter(settings.REDIS_URL)
    assert await other_gateway.acheck(alice.id) == (True, 0.0)
    assert (await _frame(phone, "ping"))["type"] == "pong"
    assert (await _frame(laptop, "ping"))["type"] == "pong"
    assert (await _frame(phone, "ping"))["type"] == "pong"
    refused = await _frame(laptop, "ping")  # the 5th frame of alice, wherever it came from
    assert refused["data"]["code"] == 1006
    assert 0 < refused["data"]["details"]["retry_after"] <= 60
    allowed, _ = await other_gateway.acheck(alice.id)
    assert not allowed
    # Another user is not affected.
    assert (await _frame(await ws_client(bob), "ping"))["type"] == "pong"


@pytest.mark.redis
async def test_ordinary_traffic_costs_no_redis_round_trip_and_a_flood_is_still_capped(
    settings, fresh_limiters, clear_rate_keys
):
    import redis.asyncio.client

    settings.WS_RATE_LIMIT = 100
    settings.WS_MAX_CONNECTIONS_PER_USER = 10  # quiet share: 10 frames per gateway per window
    settings.WS_RATE_WINDOW_SECONDS = 60
    calls: list[str] = []
    real_execute = redis.asyncio.client.Redis.execute_command

    async def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        calls.append(str(args[0]))
        return await real_execute(self, *args, **kwargs)

    redis.asyncio.client.Redis.execute_command = counting
    try:
        gateways = [ratelimit.RedisRateLimiter(settings.REDIS_URL) for _ in range(3)]
        # Ten frames on each of three gateways: within every quiet share, no round trip.
        for gateway in gateways:
            assert all([(await gateway.acheck(42))[0] for _ in range(10)])
        assert calls == []
        # A flood from the same user on every gateway: Redis counts it, with the frames
        # already seen, and refuses past the limit (the 30 quiet frames are the slack).
        outcomes = [(await gateways[n % 3].acheck(42))[0] for n in range(300)]
    finally:
        redis.asyncio.client.Redis.execute_command = real_execute
    accepted = 30 + sum(outcomes)
    assert calls, "the flood never reached Redis"
    assert settings.WS_RATE_LIMIT <= accepted <= settings.WS_RATE_LIMIT + 30, accepted
    assert not any(outcomes[-100:])


async def test_memory_limiter_counts_in_process(settings):
    settings.WS_RATE_LIMIT = 2
    settings.WS_RATE_WINDOW_SECONDS = 60
    limiter = ratelimit.RateLimiter()
    assert [(await limiter.acheck(7))[0] for _ in range(3)] == [True, True, False]


async def _close_output(ws) -> dict:
    return await ws.receive_output(timeout=WAIT)


async def test_sockets_per_user_are_capped_4029(ws_client, alice, settings):
    settings.PRESENCE_BACKEND = "memory"
    settings.WS_MAX_CONNECTIONS_PER_USER = 3
    sockets = [await ws_client(alice) for _ in range(3)]
    extra = await ws_client(alice)
    assert await _close_output(extra) == {"type": "websocket.close", "code": 4029, "reason": "too many connections"}
    for ws in sockets:
        assert (await _frame(ws, "ping"))["type"] == "pong"
    # The refused socket left no presence entry behind: closing one frees a place.
    await sockets[0].disconnect()
    again = await ws_client(alice)
    assert (await _frame(again, "ping"))["type"] == "pong"


@pytest.mark.redis
async def test_cap_counts_the_users_sockets_on_other_gateways(ws_client, alice, settings, redis_presence):
    settings.WS_MAX_CONNECTIONS_PER_USER = 3
    redis_presence.connect(alice.id, "elsewhere-1", "gw-other")
    redis_presence.connect(alice.id, "elsewhere-2", "gw-other")
    here = await ws_client(alice)
    assert (await _frame(here, "ping"))["type"] == "pong"
    extra = await ws_client(alice)
    assert await _close_output(extra) == {"type": "websocket.close", "code": 4029, "reason": "too many connections"}
    # Sockets of a gateway whose liveness lapsed do not count.
    redis_presence.sweep_gateway("gw-other")
    assert (await _frame(await ws_client(alice), "ping"))["type"] == "pong"


async def test_frame_that_does_not_finish_in_time_closes_1011(ws_client, alice, settings):
    """A hung dependency must not leave the socket open and dead: past
    WS_FRAME_TIMEOUT_SECONDS the socket is closed for the client to reconnect."""
    settings.PRESENCE_BACKEND = "memory"
    ws = await ws_client(alice)
    settings.WS_FRAME_TIMEOUT_SECONDS = 0.000001  # a database hop cannot finish in a microsecond
    await ws.send_to(text_data=json.dumps({"type": "sync", "data": {}}))
    assert await _close_output(ws) == {"type": "websocket.close", "code": 1011, "reason": "frame timeout"}
