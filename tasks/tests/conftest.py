"""Fixtures of the im-task tests: a real Celery broker for the test process, big groups
created in bulk, and draining bus topics."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager

import pytest

from protos.gochat.v1 import envelopes_pb2 as pb


@pytest.fixture
def memory_bus(settings):
    """The in-process bus and presence, fresh for this test (the embedded default)."""
    from messaging.bus import reset_bus
    from messaging.presence import reset_presence

    settings.BUS_BACKEND = "memory"
    settings.PRESENCE_BACKEND = "memory"
    reset_bus()
    reset_presence()
    yield
    reset_bus()
    reset_presence()


def _drop_connections(app) -> None:  # noqa: ANN001
    # The connection and producer pools are bound to the broker URL of their first use
    # (with an empty URL Celery's default is amqp://localhost); Celery has no public way
    # to rebind them, so the test drops both and they are rebuilt from the new URL.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def use_broker(url: str):
    """This process publishes tasks to the broker at `url` instead of running them eagerly.

    A Redis test database is emptied before and after, so no task of another test leaks
    in. RabbitMQ queues are left alone: the server may be shared.
    """
    from gochat_site.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=url, task_always_eager=False)
    _drop_connections(app)

    def purge() -> None:
        if url.startswith("redis://"):
            import redis

            # The whole database is the tests' (a DB number of its own): besides the
            # queues it holds the unacked tasks of killed workers and the restore lock.
            client = redis.Redis.from_url(url)
            client.flushdb()
            client.close()

    purge()
    try:
        yield url
    finally:
        purge()
        app.conf.update(saved)
        _drop_connections(app)


@pytest.fixture
def celery_broker():
    """The tests' Redis broker (CELERY_TEST_BROKER_URL, default redis://127.0.0.1:6379/6)."""
    from tests.harness.celery_worker import test_broker_url

    with use_broker(test_broker_url()) as url:
        yield url


@pytest.fixture
def rabbitmq_broker():
    """A RabbitMQ broker (RABBITMQ_TEST_URL); skipped when none answers, failed under CI."""
    import os

    from kombu import Connection

    url = os.environ.get("RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672//")
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 - any failure means "no RabbitMQ here"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"RabbitMQ at {url} is not reachable under CI=true: {exc}")
        pytest.skip(f"RabbitMQ at {url} is not reachable (set RABBITMQ_TEST_URL): {exc}")
    with use_broker(url) as url:
        yield url


@pytest.fixture
def rabbitmq_private_broker():
    """A RabbitMQ vhost of this test's own (tests/harness/rabbitmq.py): no task of another
    test or user of the server can be in its queues. Needs rabbitmqctl (root), as CI has."""
    import shutil

    from tests.harness.rabbitmq import PrivateRabbitVhost

    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is not installed: the RabbitMQ broker tests need it")
    vhost = PrivateRabbitVhost()
    vhost.start()
    try:
        with use_broker(vhost.url) as url:
            yield url
    finally:
        vhost.stop()


def queued_tasks(queue: str) -> list[tuple[str, dict]]:
    """Take every task message waiting in `queue`: (task name, kwargs) pairs."""
    from kombu import Exchange, Queue

    from gochat_site.celery import app

    found = []
    with app.connection_for_write() as conn:
        simple = conn.SimpleQueue(Queue(queue, Exchange(queue), routing_key=queue))
        try:
            while True:
                try:
                    message = simple.get(timeout=0.5)
                except simple.Empty:
                    break
                _args, kwargs, _embed = message.decode()
                found.append((message.headers["task"], kwargs))
                message.ack()
        finally:
            simple.close()
    return found


@pytest.fixture
def bulk_group(alice):
    """bulk_group(n) -> (group, member ids sorted): n members (alice included), users
    created in one INSERT (no password hashing), members through groups.services."""
    from accounts.models import User
    from groups.services import create_group

    def factory(n: int, name: str = "big"):
        stamp = time.monotonic_ns()
        users = User.objects.bulk_create(
            [User(username=f"{name}{stamp}_{i}", password="!") for i in range(n - 1)], batch_size=1000
        )
        ids = [u.id for u in users] or list(
            User.objects.filter(username__startswith=f"{name}{stamp}_").values_list("id", flat=True)
        )
        group = create_group(owner_id=alice.id, name=name, member_ids=ids, max_members=max(n, 500))
        return group, sorted([alice.id, *ids])

    return factory


def drain(topics: list[str], *, group_id: str = "", expect: Callable[[list], bool] | None = None, timeout: float = 60.0,
          idle: float = 1.5) -> list:
    """Read `topics` from the start until `expect(records)` holds and then nothing new
    arrives for `idle` seconds (so extra records would be seen), or until timeout."""
    import uuid

    from messaging.bus import get_consumer

    # A fresh group by default: it starts at the beginning of every topic and partition.
    consumer = get_consumer(topics, group_id or f"test-reader-{uuid.uuid4().hex[:8]}")
    records: list = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(500, 0.2)
            if batch:
                records.extend(batch)
                last_new = time.monotonic()
                continue
            if (expect is None or expect(records)) and time.monotonic() - last_new >= idle:
                break
        if records:
            consumer.commit()  # a later drain() of the same group sees only newer records
    finally:
        consumer.close()
    return records


def envelopes(records: list) -> list[tuple[str, pb.DownstreamMessage]]:
    out = []
    for record in records:
        envelope = pb.DownstreamMessage()
        envelope.ParseFromString(record.value)
        out.append((record.topic, envelope))
    return out
