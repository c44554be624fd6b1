"""Presence contract for both backends (in-process and Redis), plus Redis round trips."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from messaging.presence import get_presence, reset_presence
from messaging.presence.memory import MemoryPresence
from messaging.presence.redis import RedisPresence, gateway_users_key, session_key


@dataclass
class Subject:
    presence: object
    # Let `fraction` of a TTL pass: a fake clock in memory, real time in Redis.
    advance: Callable[[float], None]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def subject(request, settings):
    if request.param == "memory":
        settings.PRESENCE_TTL_SECONDS = 90
        now = [1000.0]
        presence = MemoryPresence(clock=lambda: now[0])

        def advance(fraction: float) -> None:
            now[0] += fraction * settings.PRESENCE_TTL_SECONDS

        return Subject(presence, advance)
    # Redis expires keys in real time; 2 s keeps the waits short but above scheduling noise.
    settings.PRESENCE_TTL_SECONDS = 2
    presence = request.getfixturevalue("redis_presence")

    def sleep(fraction: float) -> None:
        time.sleep(fraction * settings.PRESENCE_TTL_SECONDS)

    return Subject(presence, sleep)


def test_connect_lookup_disconnect(subject):
    presence = subject.presence
    presence.connect(1, "c-1", "gw-a")

    assert presence.lookup([1, 2]) == {1: {"c-1": "gw-a"}}

    presence.disconnect(1, "c-1")
    assert presence.lookup([1, 2]) == {}


def test_several_connections_per_user_on_several_gateways(subject):
    presence = subject.presence
    presence.connect(7, "phone", "gw-a")
    presence.connect(7, "laptop", "gw-a")
    presence.connect(7, "tablet", "gw-b")
    presence.connect(8, "web", "gw-b")

    assert presence.lookup([7, 8, 7]) == {
        7: {"phone": "gw-a", "laptop": "gw-a", "tablet": "gw-b"},
        8: {"web": "gw-b"},
    }

    presence.disconnect(7, "phone")
    assert presence.lookup([7]) == {7: {"laptop": "gw-a", "tablet": "gw-b"}}
    presence.disconnect(7, "laptop")
    presence.disconnect(7, "tablet")
    presence.disconnect(7, "never-connected")
    assert presence.lookup([7, 8]) == {8: {"web": "gw-b"}}


def test_lookup_of_nobody_is_empty(subject):
    assert subject.presence.lookup([]) == {}
    assert subject.presence.lookup([424242]) == {}


def test_entries_expire_without_heartbeat_and_heartbeats_keep_them(subject):
    presence = subject.presence
    presence.connect(1, "silent", "gw-a")
    presence.connect(2, "chatty", "gw-a")

    subject.advance(0.6)
    presence.heartbeat(2, "chatty", "gw-a")
    subject.advance(0.6)

    # 1.2 TTLs after connect: the silent one is gone, the one that beat at 0.6 is not.
    assert presence.lookup([1, 2]) == {2: {"chatty": "gw-a"}}

    subject.advance(1.5)
    assert presence.lookup([1, 2]) == {}
    # A heartbeat after expiry (a stalled socket that recovered) registers it again.
    presence.heartbeat(2, "chatty", "gw-a")
    assert presence.lookup([2]) == {2: {"chatty": "gw-a"}}


def test_dead_gateway_is_filtered_then_swept(subject):
    presence = subject.presence
    presence.connect(5, "on-crashed", "gw-crashed")
    presence.connect(5, "on-live", "gw-live")
    presence.connect(6, "only-crashed", "gw-crashed")

    # gw-live keeps beating (so user 5's hash stays alive); gw-crashed is silent.
    subject.advance(0.6)
    presence.heartbeat(5, "on-live", "gw-live")
    subject.advance(0.6)

    assert presence.lookup([5, 6]) == {5: {"on-live": "gw-live"}}
    assert "gw-crashed" in presence.dead_gateways()
    assert "gw-live" not in presence.dead_gateways()

    assert presence.sweep_gateway("gw-crashed") == 1  # user 6's hash already expired
    assert presence.dead_gateways() == []
    # The fields are deleted, not only hidden: reviving the gateway id does not bring
    # back the crashed process's connections.
    presence.gateway_heartbeat("gw-crashed")
    assert presence.lookup([5, 6]) == {5: {"on-live": "gw-live"}}


def test_sweep_of_a_gateway_removes_all_its_connections(subject):
    presence = subject.presence
    for user_id in range(10, 15):
        presence.connect(user_id, f"c-{user_id}", "gw-old")
    presence.connect(12, "c-12-new", "gw-new")

    assert presence.sweep_gateway("gw-old") == 5
    assert presence.lookup(list(range(10, 15))) == {12: {"c-12-new": "gw-new"}}
    assert presence.sweep_gateway("gw-old") == 0


async def test_async_twins(subject):
    presence = subject.presence
    await presence.aconnect(3, "ws-1", "gw-a")
    await presence.aconnect(3, "ws-2", "gw-b")
    await presence.aheartbeat(3, "ws-1", "gw-a")
    await presence.agateway_heartbeat("gw-b")
    assert await presence.alookup([3]) == {3: {"ws-1": "gw-a", "ws-2": "gw-b"}}
    # Sync and async views agree (logic reads what the gateway wrote).
    assert presence.lookup([3]) == {3: {"ws-1": "gw-a", "ws-2": "gw-b"}}

    await presence.adisconnect(3, "ws-1")
    assert await presence.alookup([3]) == {3: {"ws-2": "gw-b"}}
    await presence.adisconnect(3, "ws-2")
    assert await presence.alookup([3]) == {}


def test_get_presence_follows_the_setting(settings):
    settings.PRESENCE_BACKEND = "memory"
    reset_presence()
    presence = get_presence()
    assert isinstance(presence, MemoryPresence)
    assert get_presence() is presence
    presence.connect(1, "c", "gw")
    reset_presence()
    assert get_presence().lookup([1]) == {}

    settings.PRESENCE_BACKEND = "carrier-pigeon"
    with pytest.raises(ValueError, match="PRESENCE_BACKEND"):
        get_presence()
    reset_presence()


# --- Redis specifics ----------------------------------------------------------------------
def counting_client(url: str) -> tuple[redis.Redis, Callable[[], int]]:
    """A client that counts writes to the socket: one per command or per pipeline."""

    class CountingConnection(redis.connection.Connection):
        writes = 0

        def send_packed_command(self, command, check_health=True):  # noqa: ANN001
            type(self).writes += 1
            return super().send_packed_command(command, check_health)

    client = redis.Redis.from_url(url, decode_responses=True, connection_class=CountingConnection)
    client.ping()  # opens the connection, so the handshake is not counted below
    CountingConnection.writes = 0

    def count() -> int:
        value = CountingConnection.writes
        CountingConnection.writes = 0
        return value

    return client, count


@pytest.mark.redis
def test_lookup_is_one_round_trip_per_batch(redis_presence, settings):
    client, round_trips = counting_client(settings.REDIS_URL)
    presence = RedisPresence(settings.REDIS_URL, client=client)
    online = [3, 250, 401, 449]
    for user_id in online:
        presence.connect(user_id, f"c-{user_id}", "gw-a")
    assert round_trips() == len(online)  # connect is one round trip too

    settings.PRESENCE_BATCH_SIZE = 200
    sessions = presence.lookup(list(range(450)))
    assert round_trips() == 3  # 200 + 200 + 50
    assert sessions == {user_id: {f"c-{user_id}": "gw-a"} for user_id in online}

    settings.PRESENCE_BATCH_SIZE = 100
    assert presence.lookup(list(range(450))) == sessions
    assert round_trips() == 5
    client.close()


@pytest.mark.redis
def test_redis_keys_follow_the_documented_layout(redis_presence, settings):
    raw = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    redis_presence.connect(77, "c-1", "gw-a")
    redis_presence.connect(77, "c-2", "gw-a")

    assert raw.hgetall(session_key(77)) == {"c-1": "gw-a", "c-2": "gw-a"}
    assert 0 < raw.ttl(session_key(77)) <= settings.PRESENCE_TTL_SECONDS
    assert raw.smembers(gateway_users_key("gw-a")) == {"77"}

    # The user stays in the gateway's set while one connection there remains.
    redis_presence.disconnect(77, "c-1")
    assert raw.smembers(gateway_users_key("gw-a")) == {"77"}
    redis_presence.disconnect(77, "c-2")
    assert raw.smembers(gateway_users_key("gw-a")) == set()
    assert raw.exists(session_key(77)) == 0
    raw.close()
