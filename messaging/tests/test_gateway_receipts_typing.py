"""Receipt and typing frames over the WebSocket, in one process (embedded default: memory
bus and presence, the logic loop in the background), and the typing hot path's cost."""
from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from messaging.gateway import membership
from messaging.gateway.typing import throttle
from messaging.tests.test_gateway import receive, send, send_text
from messaging.tests.test_gateway_hot_path import _wait_trusted, counting, frames_handled  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_caches(settings):
    settings.PRESENCE_BACKEND = "memory"
    settings.WS_RATE_LIMIT_BACKEND = "memory"
    membership.reset_cache()
    throttle.reset()
    yield
    membership.reset_cache()
    throttle.reset()


async def _exchange(alice_ws, bob_ws, conversation, count: int = 2) -> None:
    for n in range(count):
        await send_text(alice_ws, conversation, f"a{n}", f"a{n}")
        assert (await receive(alice_ws))["type"] == "send-ack"
        assert (await receive(bob_ws))["type"] == "new-message"


# --- receipts -----------------------------------------------------------------------------------------


async def test_read_over_ws_sends_a_receipt_to_the_peer(ws_client, alice, bob, single_chat):
    alice_ws = await ws_client(alice)
    bob_phone = await ws_client(bob)
    bob_laptop = await ws_client(bob)
    for n in range(2):
        await send_text(alice_ws, single_chat, f"a{n}", f"a{n}")
        assert (await receive(alice_ws))["type"] == "send-ack"
        await receive(bob_phone)
        await receive(bob_laptop)
    await send(bob_phone, "read", {"conversation_id": str(single_chat.id), "seq": 2})
    assert await receive(alice_ws) == {
        "type": "receipt",
        "data": {"conversation_id": str(single_chat.id), "user_id": str(bob.id), "seq": 2},
    }
    assert (await receive(bob_laptop))["type"] == "read"  # his own other device: read, not receipt
    assert await bob_phone.receive_nothing(timeout=0.3)
    # A read that moves nothing sends no receipt.
    await send(bob_phone, "read", {"conversation_id": str(single_chat.id), "seq": 1})
    assert await alice_ws.receive_nothing(timeout=0.5)


async def test_no_receipt_frame_when_the_reader_has_receipts_off(ws_client, alice, bob, single_chat):
    from accounts.services import update_profile

    await database_sync_to_async(update_profile)(user_id=bob.id, send_read_receipts=False)
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await _exchange(alice_ws, bob_ws, single_chat, 1)
    await send(bob_ws, "read", {"conversation_id": str(single_chat.id), "seq": 1})
    assert await alice_ws.receive_nothing(timeout=0.7)


async def test_sync_of_a_group_carries_read_count(ws_client, alice, group_of):
    from messaging.services import mark_read, send_message

    group = await database_sync_to_async(group_of)(3)
    conversation_id = await database_sync_to_async(lambda: group.conversation.id)()

    def setup() -> list[int]:
        from messaging.models import ConversationMember

        send_message(sender_id=alice.id, conversation_id=conversation_id, content="x", client_msg_id="x1")
        send_message(sender_id=alice.id, conversation_id=conversation_id, content="y", client_msg_id="x2")
        others = list(
            ConversationMember.objects.filter(conversation_id=conversation_id)
            .exclude(user_id=alice.id)
            .values_list("user_id", flat=True)
        )
        mark_read(user_id=others[0], conversation_id=conversation_id, seq=2)
        mark_read(user_id=others[1], conversation_id=conversation_id, seq=1)
        return others

    await database_sync_to_async(setup)()
    ws = await ws_client(alice)
    await send(ws, "sync", {"conversation_id": str(conversation_id), "after_seq": 0})
    page = await receive(ws)
    assert [(m["seq"], m["read_count"]) for m in page["data"]["messages"]] == [(1, 2), (2, 1)]


# --- typing -------------------------------------------------------------------------------------------


async def test_typing_reaches_the_other_members_sockets(ws_client, alice, bob, single_chat):
    alice_ws = await ws_client(alice)
    alice_tab = await ws_client(alice)
    bob_phone = await ws_client(bob)
    bob_laptop = await ws_client(bob)
    await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
    expected = {
        "type": "typing",
        "data": {"conversation_id": str(single_chat.id), "user_id": str(alice.id), "user_name": "Alice"},
    }
    assert await receive(bob_phone) == expected
    assert await receive(bob_laptop) == expected
    assert await alice_ws.receive_nothing(timeout=0.3)  # no reply to the typer...
    assert await alice_tab.receive_nothing(timeout=0.1)  # ...nor to their other devices


async def test_typing_is_throttled_per_user_and_conversation(ws_client, settings, alice, bob, single_chat):
    settings.TYPING_THROTTLE_SECONDS = 0.6
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    for _ in range(3):
        await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
    assert (await receive(bob_ws))["type"] == "typing"
    assert await bob_ws.receive_nothing(timeout=0.3)
    await asyncio.sleep(0.4)
    await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
    assert (await receive(bob_ws))["type"] == "typing"


async def test_typing_is_dropped_above_typing_max_group_size(ws_client, settings, alice, group_of):
    settings.TYPING_MAX_GROUP_SIZE = 2
    group = await database_sync_to_async(group_of)(3)
    conversation_id, other = await database_sync_to_async(
        lambda: (group.conversation.id, group.conversation.members.exclude(user_id=alice.id).first().user)
    )()
    alice_ws = await ws_client(alice)
    other_ws = await ws_client(other)
    await send(alice_ws, "typing", {"conversation_id": str(conversation_id)})
    assert await other_ws.receive_nothing(timeout=0.5)
    assert await alice_ws.receive_nothing(timeout=0.1)  # dropped silently, no error


async def test_typing_errors(ws_client, alice, carol, single_chat):
    ws = await ws_client(carol)
    await send(ws, "typing", {"conversation_id": str(single_chat.id)})
    assert (await receive(ws))["data"]["code"] == 1005
    for bad in ({}, {"conversation_id": "x"}, {"conversation_id": "0"}, {"conversation_id": [1]}):
        await send(ws, "typing", bad)
        frame = await receive(ws)
        assert frame["type"] == "error" and frame["data"]["code"] == 1001
        assert "conversation_id" in frame["data"]["details"]
    await send(ws, "typing", {"conversation_id": str(single_chat.id + 1)})
    assert (await receive(ws))["data"]["code"] == 1003


async def test_a_new_group_member_gets_typing_at_once(ws_client, alice, bob, group_of):
    """Joining drops every gateway's cached member list (group_sync -> forget_member_list)."""
    from groups.services import add_members

    group = await database_sync_to_async(group_of)(2)
    conversation_id = await database_sync_to_async(lambda: group.conversation.id)()
    alice_ws = await ws_client(alice)
    await send(alice_ws, "typing", {"conversation_id": str(conversation_id)})  # caches the list
    await asyncio.sleep(0.2)
    await database_sync_to_async(add_members)(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    bob_ws = await ws_client(bob)
    throttle.reset()
    await send(alice_ws, "typing", {"conversation_id": str(conversation_id)})
    assert (await receive(bob_ws))["data"]["user_id"] == str(alice.id)


# --- the hot path ---------------------------------------------------------------------------------------


async def test_warm_typing_frame_takes_no_sql_and_no_thread_hop(
    ws_client, alice, bob, single_chat, settings, frames_handled, monkeypatch  # noqa: F811
):
    settings.EMBEDDED_LOGIC = False  # every statement counted comes from the gateway
    settings.TYPING_THROTTLE_SECONDS = 0
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await _wait_trusted()
    await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})  # cold: fills the caches
    await asyncio.wait_for(frames_handled.get(), 10)
    assert (await receive(bob_ws))["type"] == "typing"
    with counting(monkeypatch) as counts:
        await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
        await asyncio.wait_for(frames_handled.get(), 10)
        assert (await receive(bob_ws))["type"] == "typing"
    assert (counts.sql, counts.thread_hops, counts.redis) == (0, 0, 0)


@pytest.mark.redis
async def test_warm_typing_frame_in_production_costs_one_redis_round_trip(
    ws_client, alice, bob, single_chat, settings, redis_presence, frames_handled, monkeypatch  # noqa: F811
):
    """With Redis presence the warm frame's only I/O is the presence lookup of the members
    (the rate limit is within this gateway's quiet share, docs/realtime.md)."""
    settings.EMBEDDED_LOGIC = False
    settings.TYPING_THROTTLE_SECONDS = 0
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await _wait_trusted()
    await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
    await asyncio.wait_for(frames_handled.get(), 10)
    assert (await receive(bob_ws))["type"] == "typing"
    with counting(monkeypatch) as counts:
        await send(alice_ws, "typing", {"conversation_id": str(single_chat.id)})
        await asyncio.wait_for(frames_handled.get(), 10)
    assert (counts.sql, counts.thread_hops, counts.redis) == (0, 0, 1)
    assert (await receive(bob_ws))["type"] == "typing"
