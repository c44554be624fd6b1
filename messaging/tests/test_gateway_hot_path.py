"""The gateway's send-message hot path (issue 9): with a warm membership cache a frame costs
no SQL statement, no thread hop and no Redis round trip (the per-user rate limit asks
Redis only once a user is past this gateway's quiet share of the limit, and then exactly
once per frame); membership removals reach every gateway process's cache."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

from messaging.gateway import membership
from messaging.gateway.consumer import GatewayConsumer

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10


class Counts:
    def __init__(self) -> None:
        self.sql = 0
        self.thread_hops = 0
        self.redis = 0
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)


@contextmanager
def counting(monkeypatch):
    """Count SQL statements on every connection of every thread, sync_to_async hops and
    redis.asyncio round trips (single commands, pipelines, scripts)."""
    import redis.asyncio.client as aclient
    from django.db.backends import utils

    counts = Counts()
    original_execute = utils.CursorWrapper._execute
    original_executemany = utils.CursorWrapper._executemany
    original_hop = SyncToAsync.__call__
    original_command = aclient.Redis.execute_command
    original_pipeline = aclient.Pipeline.execute

    def _execute(self, *args, **kwargs):
        counts.add("sql")
        return original_execute(self, *args, **kwargs)

    def _executemany(self, *args, **kwargs):
        counts.add("sql")
        return original_executemany(self, *args, **kwargs)

    async def hop(self, *args, **kwargs):
        counts.add("thread_hops")
        return await original_hop(self, *args, **kwargs)

    async def command(self, *args, **kwargs):
        counts.add("redis")
        return await original_command(self, *args, **kwargs)

    async def pipeline(self, *args, **kwargs):
        counts.add("redis")
        return await original_pipeline(self, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", _execute)
    monkeypatch.setattr(utils.CursorWrapper, "_executemany", _executemany)
    monkeypatch.setattr(SyncToAsync, "__call__", hop)
    monkeypatch.setattr(aclient.Redis, "execute_command", command)
    monkeypatch.setattr(aclient.Pipeline, "execute", pipeline)
    try:
        yield counts
    finally:
        monkeypatch.undo()


@pytest.fixture
def frames_handled(monkeypatch):
    """An asyncio.Queue that gets one item each time the gateway finished a frame."""
    done: asyncio.Queue = asyncio.Queue()
    original = GatewayConsumer._receive

    async def wrapped(self, text_data, bytes_data):
        try:
            await original(self, text_data, bytes_data)
        finally:
            done.put_nowait(text_data)

    monkeypatch.setattr(GatewayConsumer, "_receive", wrapped)
    return done


@pytest.fixture
def gateway_only(settings):
    """The gateway alone: no embedded logic loop, so every SQL statement counted and every
    error frame seen comes from the gateway itself."""
    from messaging.gateway.ratelimit import reset_limiters

    settings.EMBEDDED_LOGIC = False
    membership.reset_cache()
    reset_limiters()
    yield
    membership.reset_cache()
    reset_limiters()


async def _send(ws, conversation_id, client_msg_id: str) -> None:
    await ws.send_to(
        text_data=json.dumps(
            {
                "type": "send-message",
                "data": {"client_msg_id": client_msg_id, "conversation_id": str(conversation_id), "content": "hi"},
            }
        )
    )


async def _wait_trusted(timeout: float = WAIT) -> None:
    """With Redis the cache is used only once the invalidation listener has subscribed."""
    for _ in range(int(timeout / 0.05)):
        if membership.get_cache().trusted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("membership invalidation listener never subscribed")


async def _warm_frame_counts(ws, frames_handled, single_chat, monkeypatch) -> Counts:
    await _send(ws, single_chat.id, "cold")
    await asyncio.wait_for(frames_handled.get(), WAIT)
    with counting(monkeypatch) as counts:
        await _send(ws, single_chat.id, "warm")
        await asyncio.wait_for(frames_handled.get(), WAIT)
    assert await ws.receive_nothing(timeout=0.1)  # no error frame: the send was accepted
    return counts


async def test_warm_send_message_frame_takes_no_sql_and_no_thread_hop(
    ws_client, alice, single_chat, settings, gateway_only, frames_handled, monkeypatch
):
    settings.PRESENCE_BACKEND = "memory"
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    ws = await ws_client(alice)
    await _wait_trusted()
    counts = await _warm_frame_counts(ws, frames_handled, single_chat, monkeypatch)
    assert (counts.sql, counts.thread_hops, counts.redis) == (0, 0, 0)


@pytest.mark.redis
@pytest.mark.parametrize("flooding", [False, True])
async def test_warm_send_message_frame_redis_round_trips_in_production(
    ws_client, alice, single_chat, settings, redis_presence, gateway_only, frames_handled, monkeypatch, flooding
):
    settings.WS_RATE_LIMIT_BACKEND = "redis"
    # A user within this gateway's quiet share costs none; past it, the per-user counter
    # shared by every gateway costs one round trip per frame.
    settings.WS_RATE_LIMIT = 20 if flooding else 1000
    # Quiet share = limit // sockets per user: 0 frames (every frame counted in Redis)
    # when "flooding", 100 otherwise.
    settings.WS_MAX_CONNECTIONS_PER_USER = 100 if flooding else 10
    settings.WS_RATE_WINDOW_SECONDS = 60
    ws = await ws_client(alice)
    await _wait_trusted()
    counts = await _warm_frame_counts(ws, frames_handled, single_chat, monkeypatch)
    assert (counts.sql, counts.thread_hops, counts.redis) == (0, 0, 1 if flooding else 0)


async def test_cold_send_message_frame_reads_membership_once(
    ws_client, alice, single_chat, settings, gateway_only, frames_handled, monkeypatch
):
    settings.PRESENCE_BACKEND = "memory"
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    ws = await ws_client(alice)
    await _wait_trusted()
    with counting(monkeypatch) as counts:
        await _send(ws, single_chat.id, "cold")
        await asyncio.wait_for(frames_handled.get(), WAIT)
    assert counts.thread_hops == 1
    assert counts.sql == 1


def test_orjson_is_pinned_in_requirements():
    from pathlib import Path

    lines = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("orjson==") for line in lines)


# --- invalidation -----------------------------------------------------------------------------


def _remove_in_another_process(*, group_id: int, actor_id: int, user_id: int) -> None:
    """remove_members in a separate Python process (another "gateway" or web worker)."""
    from django.conf import settings

    from tests.harness.stack import ROOT, test_database_url

    env = dict(os.environ, DATABASE_URL=test_database_url(), REDIS_URL=settings.REDIS_URL)
    code = (
        "import django; django.setup(); from groups.services import remove_members; "
        f"remove_members(group_id={group_id}, actor_id={actor_id}, user_ids=[{user_id}])"
    )
    env["DJANGO_SETTINGS_MODULE"] = "gochat_site.settings"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


@pytest.mark.redis
@pytest.mark.postgres
async def test_removal_in_another_process_refuses_at_this_gateway(
    ws_client, alice, bob, group_of, settings, redis_presence, gateway_only, frames_handled
):
    from groups.services import add_members

    settings.WS_RATE_LIMIT_BACKEND = "memory"
    group = await database_sync_to_async(group_of)(2)
    await database_sync_to_async(add_members)(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    conversation = await database_sync_to_async(lambda: group.conversation)()
    ws = await ws_client(bob)
    await _wait_trusted()
    await _send(ws, conversation.id, "b-1")
    await asyncio.wait_for(frames_handled.get(), WAIT)
    assert membership.is_known_member(user_id=bob.id, conversation_id=conversation.id)

    await asyncio.to_thread(_remove_in_another_process, group_id=group.id, actor_id=alice.id, user_id=bob.id)
    for _ in range(100):
        if not membership.is_known_member(user_id=bob.id, conversation_id=conversation.id):
            break
        await asyncio.sleep(0.02)
    # With no logic running, only the gateway itself can refuse: it did, from fresh data.
    await _send(ws, conversation.id, "b-2")
    error = json.loads(await ws.receive_from(timeout=WAIT))
    assert error["data"]["code"] == 1005
    assert error["data"]["client_msg_id"] == "b-2"


async def test_removal_in_this_process_drops_the_entry_after_commit(alice, bob, group_of, settings):
    settings.REDIS_URL = ""  # the embedded default: invalidation stays in-process
    membership.reset_cache()
    await database_sync_to_async(_add_check_remove)(alice, bob, group_of)


def _add_check_remove(alice, bob, group_of) -> None:
    from groups.services import add_members, remove_members

    group = group_of(2)
    add_members(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    conversation_id = group.conversation.id
    membership.check_member(user_id=bob.id, conversation_id=conversation_id)
    assert membership.is_known_member(user_id=bob.id, conversation_id=conversation_id)
    remove_members(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    assert not membership.is_known_member(user_id=bob.id, conversation_id=conversation_id)
    membership.reset_cache()


def test_cache_is_bounded_lru(settings):
    settings.REDIS_URL = ""
    settings.MEMBERSHIP_CACHE_MAX_ENTRIES = 3
    cache = membership.MembershipCache()
    for conversation_id in range(1, 5):
        cache.remember(7, conversation_id, generation=cache.generation)
    assert len(cache) == 3
    assert not cache.is_member(7, 1)  # the least recently used went first
    assert all(cache.is_member(7, c) for c in (2, 3, 4))


def test_answer_read_before_an_invalidation_is_not_cached(settings):
    settings.REDIS_URL = ""
    cache = membership.MembershipCache()
    generation = cache.generation
    cache.forget(9, [7])  # the removal lands while the database read is under way
    cache.remember(7, 9, generation=generation)
    assert not cache.is_member(7, 9)


def test_untrusted_cache_answers_nothing(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # production mode, listener not subscribed
    cache = membership.MembershipCache()
    cache.remember(7, 9, generation=cache.generation)
    assert not cache.is_member(7, 9)
    cache.set_trusted(True)
    cache.remember(7, 9, generation=cache.generation)
    assert cache.is_member(7, 9)
    cache.set_trusted(False)  # the listener lost Redis: what it missed is unknown
    assert not cache.is_member(7, 9)


async def test_gateway_sockets_use_no_channel_layer(ws_client, alice, settings):
    """The Redis channel layer is configured (REDIS_URL) but the gateway never uses it:
    its sockets must not each wait on it."""
    from messaging.gateway.registry import registry

    settings.PRESENCE_BACKEND = "memory"
    ws = await ws_client(alice)
    await ws.send_to(text_data='{"type":"ping"}')
    await ws.receive_from(timeout=WAIT)
    (connection,) = registry.of_user(alice.id)
    assert connection.channel_layer is None


async def test_new_message_envelope_is_encoded_once_for_all_its_sockets(
    ws_client, alice, bob, carol, settings, monkeypatch
):
    from messaging.gateway import downstream, protocol
    from protos.gochat.v1 import envelopes_pb2 as pb

    settings.PRESENCE_BACKEND = "memory"
    sockets = [await ws_client(user) for user in (alice, bob, carol)]
    for ws in sockets:  # registered once the pong is back
        await ws.send_to(text_data='{"type":"ping"}')
        await ws.receive_from(timeout=WAIT)
    calls = []
    original = protocol.encode
    monkeypatch.setattr(protocol, "encode", lambda frame: calls.append(frame["type"]) or original(frame))
    envelope = pb.DownstreamMessage(
        kind=pb.DownstreamMessage.NEW_MESSAGE,
        recipient_user_ids=[alice.id, bob.id, carol.id],
        message=pb.ChatMessage(id=99, conversation_id=5, seq=1, sender_id=alice.id, content="hi", created_at_ms=1),
    )
    assert await downstream.deliver_envelope(envelope) == 3
    assert calls == ["new-message"]
    for ws in sockets:
        assert json.loads(await ws.receive_from(timeout=WAIT))["data"]["message"]["id"] == "99"
