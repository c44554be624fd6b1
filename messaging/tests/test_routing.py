"""Routing: batched presence lookups and one multicast envelope per target gateway,
checked by consuming the downstream topics (memory bus and the Tansu Kafka broker)."""
from __future__ import annotations

import logging
import time
import uuid

import pytest

from messaging.bus import downstream_topic, get_consumer, reset_bus
from messaging.presence import get_presence, reset_presence
from messaging.routing import deliver_to_users, route_message
from messaging.services import send_message
from protos.gochat.v1 import envelopes_pb2 as pb

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_bus():
    reset_bus()
    reset_presence()
    yield
    reset_bus()
    reset_presence()


def _big_group(alice, size: int):
    """A group of `size` members owned by alice; users made in bulk (no password hashing)."""
    from accounts.models import User
    from groups.services import create_group

    run = uuid.uuid4().hex[:6]
    users = User.objects.bulk_create([User(username=f"m{run}_{n}", password="!") for n in range(size - 1)])
    group = create_group(owner_id=alice.id, name="crowd", member_ids=[u.id for u in users], max_members=size)
    return group, [alice.id] + [u.id for u in users]


def _drain(topic: str, *, first_wait: float = 30.0, idle: float = 1.5) -> list[pb.DownstreamMessage]:
    """Every envelope on `topic`: wait for the first, then until the topic stays quiet."""
    consumer = get_consumer([topic], f"test-drain-{uuid.uuid4().hex[:8]}")
    envelopes: list[pb.DownstreamMessage] = []
    deadline = time.monotonic() + first_wait
    try:
        while time.monotonic() < deadline:
            records = consumer.consume(1000, 0.5)
            envelopes.extend(pb.DownstreamMessage.FromString(r.value) for r in records)
            if envelopes:
                deadline = min(deadline, time.monotonic() + idle) if not records else time.monotonic() + idle
    finally:
        consumer.close()
    return envelopes


def _enqueued(caplog, task: str) -> list[dict]:
    return [
        r.task_kwargs
        for r in caplog.records
        if r.getMessage() in {"task_enqueued", "task_not_registered"} and getattr(r, "task", "") == task
    ]


def _fan_out_450(alice, settings, caplog, on_commit):
    settings.PRESENCE_BATCH_SIZE = 200
    group, member_ids = _big_group(alice, 450)
    presence = get_presence()
    gw_a, gw_b = f"gw-a-{uuid.uuid4().hex[:6]}", f"gw-b-{uuid.uuid4().hex[:6]}"
    on_a = set(member_ids[1:150])
    on_b = set(member_ids[100:300])  # 100..149 have a device on each gateway
    for user_id in on_a:
        presence.connect(user_id, f"a-{user_id}", gw_a)
    for user_id in on_b:
        presence.connect(user_id, f"b-{user_id}", gw_b)
    lookups = []
    real_lookup = presence.lookup
    presence.lookup = lambda ids: lookups.append(len(ids)) or real_lookup(ids)  # count round trips

    message = send_message(
        sender_id=alice.id, conversation_id=group.conversation.id, content="all hands", client_msg_id="big-1"
    ).message
    with caplog.at_level(logging.INFO), on_commit(execute=True):
        route_message(message, trace_id="t-450", flush=True)

    assert lookups == [200, 200, 50]
    by_gateway = {gw: _drain(downstream_topic(gw)) for gw in (gw_a, gw_b)}
    for gw, expected in ((gw_a, on_a), (gw_b, on_b)):
        envelopes = by_gateway[gw]
        assert len(envelopes) == 1, f"{gw} got {len(envelopes)} envelopes"
        envelope = envelopes[0]
        assert envelope.kind == pb.DownstreamMessage.NEW_MESSAGE
        assert set(envelope.recipient_user_ids) == expected
        assert envelope.message.id == message.id
        assert envelope.trace_id == "t-450"
    offline = set(member_ids) - on_a - on_b
    pushes = _enqueued(caplog, "tasks.offline_push")
    assert len(pushes) == 1
    # The sender (offline here: sent over REST) gets no push of their own message.
    assert set(pushes[0]["user_ids"]) == offline - {alice.id}
    indexed = [{"message_id": message.id}] if settings.SEARCH_INDEX_ON_WRITE else []
    assert _enqueued(caplog, "tasks.index_message") == indexed


def test_450_member_group_is_one_envelope_per_gateway(
    alice, settings, caplog, fresh_bus, django_capture_on_commit_callbacks
):
    _fan_out_450(alice, settings, caplog, django_capture_on_commit_callbacks)


def test_450_member_group_is_one_envelope_per_gateway_on_kafka(
    alice, settings, caplog, kafka_bus, fresh_bus, django_capture_on_commit_callbacks
):
    _fan_out_450(alice, settings, caplog, django_capture_on_commit_callbacks)


def test_group_above_threshold_goes_to_the_fanout_task(
    alice, group_of, settings, caplog, fresh_bus, django_capture_on_commit_callbacks
):
    settings.LARGE_GROUP_THRESHOLD = 3
    group = group_of(4)
    get_presence().connect(alice.id, "c-1", "gw-x")
    message = send_message(
        sender_id=alice.id, conversation_id=group.conversation.id, content="big", client_msg_id="f-1"
    ).message
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
        route_message(message, trace_id="t-f", flush=True)
    assert _enqueued(caplog, "tasks.large_group_fanout") == [{"message_id": message.id, "trace_id": "t-f"}]
    # Only the fan-out task delivered (eagerly here): routing did not also fan out inline.
    envelopes = _drain(downstream_topic("gw-x"), first_wait=3.0)
    assert [list(e.recipient_user_ids) for e in envelopes] == [[alice.id]]


def test_deliver_skips_the_sending_socket_but_not_other_devices(alice, bob, single_chat, fresh_bus):
    presence = get_presence()
    presence.connect(alice.id, "phone", "gw-1")
    presence.connect(alice.id, "laptop", "gw-2")
    presence.connect(bob.id, "bob-1", "gw-1")
    message = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="x", client_msg_id="d-1").message
    offline = deliver_to_users(message, [alice.id, bob.id], skip_connection_id="phone")
    assert offline == []
    (gw1,) = _drain(downstream_topic("gw-1"))
    (gw2,) = _drain(downstream_topic("gw-2"))
    assert sorted(gw1.recipient_user_ids) == [bob.id]
    assert gw1.connection_id == "phone"
    assert list(gw2.recipient_user_ids) == [alice.id]


def test_muted_offline_members_get_no_push(
    alice, bob, carol, group_of, caplog, fresh_bus, django_capture_on_commit_callbacks
):
    from messaging.services import update_member_settings

    from groups.services import add_members

    group = group_of(1)
    add_members(group_id=group.id, actor_id=alice.id, user_ids=[bob.id, carol.id])
    conversation_id = group.conversation.id
    update_member_settings(user_id=bob.id, conversation_id=conversation_id, muted=True)
    message = send_message(sender_id=alice.id, conversation_id=conversation_id, content="x", client_msg_id="m-1").message
    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks(execute=True):
        offline = deliver_to_users(message, [alice.id, bob.id, carol.id])
    assert sorted(offline) == sorted([alice.id, bob.id, carol.id])
    assert [p["user_ids"] for p in _enqueued(caplog, "tasks.offline_push")] == [[carol.id]]
