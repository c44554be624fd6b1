"""Presence push (issue 11): a user's first socket connecting or last socket closing is
pushed as a `presence` frame to the users who share a conversation with them, batched
per gateway, and to no one else."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from messaging import presence_push, routing
from messaging.bus import downstream_topic, get_consumer, reset_bus
from messaging.presence import get_presence, reset_presence
from protos.gochat.v1 import envelopes_pb2 as pb

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh(settings):
    settings.PRESENCE_PUSH_INTERVAL_SECONDS = 0.2
    presence_push.forget_watchers()
    presence_push.changes.take()
    yield
    presence_push.forget_watchers()
    presence_push.changes.take()


async def _next_presence(ws, timeout: float = 5.0) -> dict:
    """The next `presence` frame (pongs and other frames are skipped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await ws.receive_json_from(timeout=max(0.05, deadline - loop.time()))
        if frame["type"] == "presence":
            return frame["data"]


async def test_peer_gets_online_then_offline_and_a_stranger_gets_nothing(ws_client, alice, bob, carol, single_chat):
    alice_ws = await ws_client(alice)
    carol_ws = await ws_client(carol)  # shares no conversation with bob
    bob_ws = await ws_client(bob)

    data = await _next_presence(alice_ws)
    assert [(u["user_id"], u["online"]) for u in data["users"]] == [(str(bob.id), True)]
    assert data["users"][0]["last_seen"]

    # A second tab of bob's is not a change; closing it while the first stays is pushed
    # as what presence says at flush time: still online.
    bob_tab = await ws_client(bob)
    assert await alice_ws.receive_nothing(timeout=0.5)
    await bob_tab.disconnect()
    await bob_ws.disconnect()
    data = await _next_presence(alice_ws)
    assert [(u["user_id"], u["online"]) for u in data["users"]] == [(str(bob.id), False)]

    assert await carol_ws.receive_nothing(timeout=0.5)


@pytest.fixture
def alice_with_three_chats(alice, bob, carol, make_user):
    from messaging.services import get_or_create_single_conversation

    dave = make_user("dave")
    for peer in (bob, carol, dave):
        get_or_create_single_conversation(user_id=alice.id, peer_id=peer.id)
    return dave


async def test_changes_within_one_interval_are_one_frame(ws_client, settings, alice, bob, carol, alice_with_three_chats):
    settings.PRESENCE_PUSH_INTERVAL_SECONDS = 1.0
    dave = alice_with_three_chats
    alice_ws = await ws_client(alice)
    await asyncio.sleep(1.2)  # alice's own change is flushed (nobody to tell)
    await ws_client(bob)
    await ws_client(carol)
    await ws_client(dave)
    data = await _next_presence(alice_ws)
    seen = {u["user_id"]: u["online"] for u in data["users"]}
    # The three connected within one interval: usually one frame; at most two if an
    # interval boundary fell between them.
    if len(seen) < 3:
        seen.update({u["user_id"]: u["online"] for u in (await _next_presence(alice_ws))["users"]})
    assert seen == {str(bob.id): True, str(carol.id): True, str(dave.id): True}


def _drain(topic: str, idle: float = 1.0) -> list[pb.DownstreamMessage]:
    consumer = get_consumer([topic], f"test-presence-{uuid.uuid4().hex[:8]}")
    envelopes: list[pb.DownstreamMessage] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            records = consumer.consume(1000, 0.5)
            envelopes.extend(pb.DownstreamMessage.FromString(r.value) for r in records)
            if envelopes and not records:
                deadline = min(deadline, time.monotonic() + idle)
    finally:
        consumer.close()
    return envelopes


def _summary(envelopes: list[pb.DownstreamMessage]) -> list[tuple[list[int], list[tuple[int, bool]]]]:
    assert all(e.kind == pb.DownstreamMessage.PRESENCE for e in envelopes)
    return sorted((sorted(e.recipient_user_ids), [(p.user_id, p.online) for p in e.presence]) for e in envelopes)


def test_route_presence_one_envelope_per_gateway_and_visible_set(
    alice, bob, carol, single_chat, django_assert_max_num_queries
):
    from messaging.services import get_or_create_single_conversation

    reset_bus()
    reset_presence()
    get_or_create_single_conversation(user_id=carol.id, peer_id=bob.id)
    one, two = f"gw-one-{uuid.uuid4().hex[:6]}", f"gw-two-{uuid.uuid4().hex[:6]}"
    presence = get_presence()
    presence.connect(alice.id, "a1", one)
    presence.connect(carol.id, "c1", one)
    presence.connect(bob.id, "b1", two)

    # Bob changed: alice and carol both see him, both on gateway one: one envelope.
    assert routing.route_presence({bob.id: 1_700_000_000_000}) == 1
    # The "who can see bob" set is cached: a second flush reads no SQL.
    with django_assert_max_num_queries(0):
        assert routing.route_presence({bob.id: 1_700_000_000_001}) == 1
    # Alice and bob changed. Gateway one: alice sees bob, carol sees bob (same set: one
    # envelope); gateway two: bob sees alice. Carol never gets alice's presence.
    assert routing.route_presence({alice.id: 1_700_000_000_002, bob.id: 1_700_000_000_002}) == 2

    on_one = _summary(_drain(downstream_topic(one)))
    on_two = _summary(_drain(downstream_topic(two)))
    both = sorted([alice.id, carol.id])
    assert on_one == [(both, [(bob.id, True)])] * 3
    assert on_two == [([bob.id], [(alice.id, True)])]

    presence.disconnect(bob.id, "b1")
    assert routing.route_presence({bob.id: 1_700_000_000_003}) == 1
    assert (both, [(bob.id, False)]) in _summary(_drain(downstream_topic(one)))
    reset_bus()
    reset_presence()
