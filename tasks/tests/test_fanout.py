"""Large-group fan-out: every online member gets the message exactly once, in one
envelope per gateway per batch; offline members are handed to push; a crash or a retry
resumes from the checkpoint."""
from __future__ import annotations

import time

import pytest
from celery.signals import task_prerun
from django.core.cache import cache

from messaging.bus import downstream_topic, ensure_topics
from messaging.presence import get_presence
from messaging.services import send_message
from tasks.processors.fanout import DONE, checkpoint_key, delivered_key, large_group_fanout
from tasks.tests.conftest import drain, envelopes, queued_tasks

GATEWAYS = ("gw-a", "gw-b")
MEMBERS = 2000
BATCHES = MEMBERS // 200


def _go_online(presence, member_ids: list[int]) -> tuple[dict[int, str], set[int]]:
    """Every other member online, alternating between the two gateways."""
    online: dict[int, str] = {}
    for index, user_id in enumerate(member_ids):
        if index % 2 == 0:
            gateway = GATEWAYS[(index // 2) % 2]
            presence.connect(user_id, f"conn-{user_id}", gateway)
            online[user_id] = gateway
    return online, set(member_ids) - set(online)


def _send(group, alice) -> int:
    result = send_message(
        sender_id=alice.id, conversation_id=group.conversation.id, content="hello everyone", client_msg_id=f"m{time.time_ns()}"
    )
    return result.message.id


def _assert_delivered_once(records, online: dict[int, str], message_id: int) -> None:
    seen: dict[int, int] = {}
    for topic, envelope in envelopes(records):
        assert envelope.message.id == message_id
        assert envelope.message.content == "hello everyone"
        for user_id in envelope.recipient_user_ids:
            seen[user_id] = seen.get(user_id, 0) + 1
            assert topic == downstream_topic(online[user_id]), "member delivered through the wrong gateway"
    assert set(seen) == set(online), "offline members got envelopes, or online ones were missed"
    assert all(count == 1 for count in seen.values())


@pytest.fixture
def push_handoffs():
    """(task name, kwargs) of every offline_push run in this process (eager mode)."""
    calls: list[dict] = []

    def receiver(sender=None, kwargs=None, **_):  # noqa: ANN001
        if sender is not None and sender.name == "tasks.offline_push":
            calls.append(dict(kwargs or {}))

    task_prerun.connect(receiver, weak=False)
    yield calls
    task_prerun.disconnect(receiver)


@pytest.mark.django_db
def test_fanout_embedded_one_envelope_per_gateway_per_batch(
    memory_bus, bulk_group, alice, push_handoffs, django_capture_on_commit_callbacks
):
    group, member_ids = bulk_group(MEMBERS)
    online, offline = _go_online(get_presence(), member_ids)
    message_id = _send(group, alice)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = large_group_fanout.delay(message_id=message_id, trace_id="trace-1").get()

    records = drain([downstream_topic(g) for g in GATEWAYS])
    assert len(records) == len(GATEWAYS) * BATCHES
    _assert_delivered_once(records, online, message_id)
    assert all(e.trace_id == "trace-1" for _, e in envelopes(records))
    assert outcome == {"batches": BATCHES, "recipients": MEMBERS}
    assert cache.get(delivered_key(message_id)) == 1
    # One push hand-off per batch, covering every offline member but the sender.
    assert len(push_handoffs) == BATCHES
    pushed = [u for call in push_handoffs for u in call["user_ids"]]
    assert sorted(pushed) == sorted(offline - {alice.id})
    assert all(call["message_id"] == message_id for call in push_handoffs)


@pytest.mark.django_db
def test_fanout_resumes_after_checkpoint_and_skips_when_done(memory_bus, bulk_group, alice):
    group, member_ids = bulk_group(1000)
    online, _ = _go_online(get_presence(), member_ids)
    message_id = _send(group, alice)
    # As if a first attempt had published the first two batches and then died.
    cache.set(checkpoint_key(message_id), member_ids[399])

    large_group_fanout.delay(message_id=message_id).get()

    records = drain([downstream_topic(g) for g in GATEWAYS], group_id="test-reader")
    later = {u: gw for u, gw in online.items() if u > member_ids[399]}
    assert len(records) == len(GATEWAYS) * 3
    _assert_delivered_once(records, later, message_id)
    assert cache.get(checkpoint_key(message_id)) == DONE

    # A redelivery of a finished fan-out publishes nothing.
    assert large_group_fanout.delay(message_id=message_id).get() == {"batches": 0, "recipients": 0}
    assert drain([downstream_topic(g) for g in GATEWAYS], group_id="test-reader", idle=0.5) == []


@pytest.mark.django_db
def test_fanout_of_missing_message_fails_without_retry(memory_bus):
    from tasks.models import FailedTask

    result = large_group_fanout.delay(message_id=123456789)
    assert result.failed()
    failed = FailedTask.objects.get(name="tasks.large_group_fanout")
    assert failed.kwargs == {"message_id": 123456789}
    assert failed.attempts == 1  # a missing row is permanent: no retries
    assert "DoesNotExist" in failed.error


# --- A real worker process, real Kafka (Tansu), Redis presence and broker, PostgreSQL --------
def _real_setup(bulk_group, alice, redis_presence):
    group, member_ids = bulk_group(MEMBERS)
    online, offline = _go_online(redis_presence, member_ids)
    ensure_topics([downstream_topic(g) for g in GATEWAYS], 1)
    return group, member_ids, online, offline


def _wait_for_checkpoint(message_id: int, done: callable, worker, timeout: float = 90.0) -> int:
    presence = get_presence()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The fake gateways stay alive as real ones do, by heartbeat.
        for gateway_id in GATEWAYS:
            presence.gateway_heartbeat(gateway_id)
        value = cache.get(checkpoint_key(message_id))
        if value is not None and done(int(value)):
            return int(value)
        time.sleep(0.02)
    raise AssertionError(
        f"fan-out checkpoint of {message_id} did not advance as expected: {cache.get(checkpoint_key(message_id))}\n"
        f"worker log:\n{worker.log()[-6000:]}"
    )


def _wait_for_delivered(message_id: int, worker, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for gateway_id in GATEWAYS:
            get_presence().gateway_heartbeat(gateway_id)
        if cache.get(delivered_key(message_id)) == 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"fan-out {message_id} not delivered within {timeout}s\nworker log:\n{worker.log()[-6000:]}")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_fanout_by_real_worker(kafka_bus, redis_presence, celery_broker, bulk_group, alice):
    from gochat_site.tasks_client import enqueue_task
    from tests.harness.celery_worker import start_worker

    group, member_ids, online, offline = _real_setup(bulk_group, alice, redis_presence)
    message_id = _send(group, alice)
    # Only the fanout queue is consumed: the push hand-offs stay in the broker to be read.
    worker = start_worker(queues="fanout")
    try:
        enqueue_task("tasks.large_group_fanout", message_id=message_id, trace_id="trace-real")
        _wait_for_checkpoint(message_id, lambda v: v == DONE, worker)
        _wait_for_delivered(message_id, worker)
    finally:
        worker.stop()

    records = drain(
        [downstream_topic(g) for g in GATEWAYS], expect=lambda r: len(r) >= len(GATEWAYS) * BATCHES
    )
    assert len(records) == len(GATEWAYS) * BATCHES
    _assert_delivered_once(records, online, message_id)
    pushes = queued_tasks("push")
    assert {name for name, _ in pushes} == {"tasks.offline_push"}
    assert len(pushes) == BATCHES
    assert sorted(u for _, kw in pushes for u in kw["user_ids"]) == sorted(offline - {alice.id})
