"""Fixtures shared by every app's tests: users, authenticated clients, groups, and the
policy for tests that need a real service (PostgreSQL, Redis)."""
from __future__ import annotations

import os

import pytest
from django.conf import settings

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _service_available(marker: str) -> tuple[bool, str]:
    if marker == "postgres":
        engine = settings.DATABASES["default"]["ENGINE"]
        return engine.endswith(".postgresql"), "DATABASE_URL does not point at PostgreSQL"
    if marker == "redis":
        return bool(settings.REDIS_URL), "REDIS_URL is not set"
    return True, ""


def pytest_collection_modifyitems(config, items):  # noqa: ANN001 - pytest hook
    for item in items:
        for marker in ("postgres", "redis"):
            if item.get_closest_marker(marker):
                ok, why = _service_available(marker)
                if ok:
                    continue
                if IN_CI:
                    # In CI a missing service is a failure, never a silent skip.
                    item.add_marker(pytest.mark.usefixtures("_fail_missing_service"))
                else:
                    item.add_marker(pytest.mark.skip(reason=f"{why} (set it to run this test)"))


@pytest.fixture
def _fail_missing_service():  # pragma: no cover - only reached on a misconfigured CI
    pytest.fail("a service this test needs is not configured under CI=true")


@pytest.fixture
def make_user(db):
    from accounts.models import User

    counter = {"n": 0}

    def factory(username: str | None = None, password: str = "pass-1234-word", **extra):
        counter["n"] += 1
        name = username or f"user{counter['n']}_{os.getpid()}"
        return User.objects.create_user(username=name, password=password, **extra)

    return factory


@pytest.fixture
def alice(make_user):
    return make_user("alice", nickname="Alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob", nickname="Bob")


@pytest.fixture
def carol(make_user):
    return make_user("carol", nickname="Carol")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def client_for(db):
    """client_for(user) -> an APIClient carrying that user's access token."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    def factory(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        return client

    return factory


@pytest.fixture
def single_chat(alice, bob):
    from messaging.services import get_or_create_single_conversation

    conversation, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=bob.id)
    return conversation


@pytest.fixture
def group_of(make_user, alice):
    """group_of(n) -> a group owned by alice with n members in all (alice included)."""
    from groups.services import create_group

    def factory(n: int, name: str = "team"):
        others = [make_user().id for _ in range(n - 1)]
        return create_group(owner_id=alice.id, name=name, member_ids=others, max_members=max(n, 500))

    return factory


# --- Bus (Kafka via the Tansu test broker) and presence (Redis) ---------------------------
@pytest.fixture(scope="session")
def kafka_broker():
    """One Tansu broker for the whole test session (in-memory storage)."""
    from tests.harness.kafka import start_tansu

    broker = start_tansu()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_bus(settings, kafka_broker):
    """Switch the bus to Kafka on the session's Tansu broker.

    Topic and group names get a per-test suffix: the broker lives for the whole session,
    and a fixed name would hand one test the records and offsets of an earlier one.
    """
    import uuid

    from messaging.bus import reset_bus

    run = uuid.uuid4().hex[:8]
    settings.BUS_BACKEND = "kafka"
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka_broker.bootstrap
    # Tansu lets a consumer join a group in 1-3 s only with a short session timeout,
    # and answers a fetch only after fetch.wait.max.ms.
    settings.KAFKA_SESSION_TIMEOUT_MS = 3000
    settings.KAFKA_HEARTBEAT_INTERVAL_MS = 500
    settings.KAFKA_FETCH_WAIT_MAX_MS = 5
    settings.KAFKA_UPSTREAM_TOPIC = f"im-upstream-topic-{run}"
    settings.KAFKA_DOWNSTREAM_TOPIC = f"im-downstream-topic-{run}-{{gateway_id}}"
    settings.KAFKA_TASK_TOPIC = f"im-task-topic-{run}"
    settings.KAFKA_TASK_DLQ_TOPIC = f"im-task-dlq-{run}"
    settings.KAFKA_UPSTREAM_DLQ_TOPIC = f"im-upstream-dlq-{run}"
    settings.KAFKA_LOGIC_GROUP = f"im-logic-group-{run}"
    settings.KAFKA_TASK_BRIDGE_GROUP = f"im-task-bridge-group-{run}"
    reset_bus()
    yield kafka_broker
    reset_bus()


def _clear_presence_keys(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in ("user_session:*", "presence:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_presence(settings):
    """Presence on the Redis of REDIS_URL, starting empty; mark the test @pytest.mark.redis."""
    from messaging.presence import get_presence, reset_presence

    if not settings.REDIS_URL:
        pytest.fail("redis_presence needs REDIS_URL: mark the test @pytest.mark.redis")
    settings.PRESENCE_BACKEND = "redis"
    reset_presence()
    _clear_presence_keys(settings.REDIS_URL)
    yield get_presence()
    reset_presence()
    _clear_presence_keys(settings.REDIS_URL)


# --- Real-time gateway (WebSocket) ----------------------------------------------------------
@pytest.fixture
async def realtime():
    """A fresh bus and presence for the gateway; stops its background loops afterwards
    (the downstream consumer and, in the embedded default, the logic consumer)."""
    from channels.db import database_sync_to_async
    from django.db import connections

    from messaging.bus import reset_bus
    from messaging.gateway import loops
    from messaging.presence import reset_presence

    reset_bus()
    reset_presence()
    yield
    await loops.stop()
    # The gateway's database work ran in asgiref's worker thread: close its connection
    # there, or the test database cannot be dropped at the end of the session.
    await database_sync_to_async(connections.close_all)()
    reset_bus()
    reset_presence()


@pytest.fixture
async def ws_client(realtime):
    """`await ws_client(user)` -> a WebsocketCommunicator on /ws connected as that user;
    query/headers replace the token query; connect=False returns it before connecting."""
    from channels.testing import WebsocketCommunicator
    from rest_framework_simplejwt.tokens import AccessToken

    from gochat_site.asgi import application

    opened = []

    async def connect(user=None, *, query: str | None = None, headers=None, connect: bool = True):
        if query is None:
            query = f"token={AccessToken.for_user(user)}" if user is not None else ""
        communicator = WebsocketCommunicator(application, f"/ws?{query}", headers=headers or [])
        opened.append(communicator)
        if not connect:
            return communicator
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        return communicator

    yield connect
    for communicator in opened:
        try:
            await communicator.disconnect()
        except Exception:  # noqa: BLE001 - already closed by the server
            pass
