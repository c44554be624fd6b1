"""Message lifecycle over the WebSocket (embedded default: memory bus, logic in the
background) and the logic's handling of edit/recall records behind their send."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from messaging.models import Message, MessageReaction
from messaging.tests.test_gateway import receive, send, send_text

pytestmark = pytest.mark.django_db(transaction=True)


async def _frames_until(ws, kind, limit=10):
    for _ in range(limit):
        frame = await receive(ws)
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


async def test_edit_racing_its_send_ends_edited_everywhere(ws_client, alice, bob, single_chat):
    """edit-message by client_msg_id right after send-message, before the ack: it rides the
    same partition, so the logic applies it after the send is persisted."""
    alice_ws, bob_ws = await ws_client(alice), await ws_client(bob)
    await send_text(alice_ws, single_chat, "typo teh", "race-1")
    await send(alice_ws, "edit-message", {"conversation_id": str(single_chat.id), "client_msg_id": "race-1", "content": "typo the"})
    ack = await _frames_until(alice_ws, "send-ack")
    update = await _frames_until(alice_ws, "update")
    assert update["data"]["kind"] == "edit"
    assert update["data"]["message"]["id"] == ack["data"]["message_id"]
    assert update["data"]["message"]["content"] == "typo the"
    assert update["data"]["message"]["edited_at"] is not None
    new = await _frames_until(bob_ws, "new-message")
    assert new["data"]["message"]["id"] == ack["data"]["message_id"]
    bob_update = await _frames_until(bob_ws, "update")
    assert (bob_update["data"]["kind"], bob_update["data"]["message"]["content"]) == ("edit", "typo the")
    row = await database_sync_to_async(Message.objects.get)(id=int(ack["data"]["message_id"]))
    assert (row.content, row.seq) == ("typo the", 1)
    await send(bob_ws, "sync", {"conversation_id": str(single_chat.id), "after_seq": 0})
    synced = await _frames_until(bob_ws, "sync-result")
    assert [m["content"] for m in synced["data"]["messages"]] == ["typo the"]


async def test_recall_reaches_every_socket_of_every_member(ws_client, alice, bob, single_chat):
    alice_ws, alice_laptop, bob_ws = await ws_client(alice), await ws_client(alice), await ws_client(bob)
    await send_text(alice_ws, single_chat, "oops secret", "r-1")
    ack = await _frames_until(alice_ws, "send-ack")
    await _frames_until(bob_ws, "new-message")
    await _frames_until(alice_laptop, "new-message")
    await send(alice_ws, "recall-message", {"conversation_id": str(single_chat.id), "message_id": ack["data"]["message_id"]})
    for ws in (alice_ws, alice_laptop, bob_ws):
        update = await _frames_until(ws, "update")
        message = update["data"]["message"]
        assert (update["data"]["kind"], message["status"], message["content"], message["seq"]) == ("recall", "recalled", "", 1)
    row = await database_sync_to_async(Message.objects.get)(id=int(ack["data"]["message_id"]))
    assert (row.status, row.content) == ("recalled", "")


async def test_refused_recall_comes_back_as_an_error_naming_the_request(ws_client, alice, bob, single_chat, settings):
    alice_ws, bob_ws = await ws_client(alice), await ws_client(bob)
    await send_text(alice_ws, single_chat, "mine", "x-1")
    ack = await _frames_until(alice_ws, "send-ack")
    await _frames_until(bob_ws, "new-message")
    # Not the sender: refused by the logic (1005), with the request echoed.
    await send(bob_ws, "recall-message", {"conversation_id": str(single_chat.id), "message_id": ack["data"]["message_id"]})
    error = await _frames_until(bob_ws, "error")
    assert error["data"]["code"] == 1005
    assert (error["data"]["request"], error["data"]["message_id"]) == ("recall-message", ack["data"]["message_id"])
    assert "client_msg_id" not in error["data"]
    # After the window: 1005 for the sender too.
    await database_sync_to_async(
        lambda: Message.objects.update(created_at=timezone.now() - timedelta(seconds=settings.MESSAGE_RECALL_SECONDS + 5))
    )()
    await send(alice_ws, "recall-message", {"conversation_id": str(single_chat.id), "client_msg_id": "x-1"})
    error = await _frames_until(alice_ws, "error")
    assert (error["data"]["code"], error["data"]["target_client_msg_id"]) == (1005, "x-1")
    assert (await database_sync_to_async(Message.objects.get)(id=int(ack["data"]["message_id"]))).status == "normal"


async def test_edit_of_an_unknown_message_is_1003(ws_client, alice, single_chat):
    alice_ws = await ws_client(alice)
    await send(alice_ws, "edit-message", {"conversation_id": str(single_chat.id), "client_msg_id": "never", "content": "x"})
    error = await _frames_until(alice_ws, "error")
    assert (error["data"]["code"], error["data"]["request"]) == (1003, "edit-message")


@pytest.mark.parametrize(
    "kind,data",
    [
        ("edit-message", {"message_id": "5", "content": ""}),  # empty content
        ("edit-message", {"message_id": "5", "content": "x" * 5000}),  # oversize
        ("edit-message", {"content": "x"}),  # no target
        ("recall-message", {"message_id": "5", "client_msg_id": "a"}),  # two targets
        ("react", {"message_id": "5", "emoji": "no"}),
        ("react", {"emoji": "👍"}),
        ("hide-message", {"message_id": "abc"}),
    ],
)
async def test_bad_lifecycle_frames_are_1001(ws_client, alice, single_chat, kind, data):
    alice_ws = await ws_client(alice)
    if kind in ("edit-message", "recall-message"):
        data = {"conversation_id": str(single_chat.id), **data}
    await send(alice_ws, kind, data)
    error = await receive(alice_ws)
    assert (error["type"], error["data"]["code"], error["data"]["request"]) == ("error", 1001, kind)


async def test_edit_in_a_conversation_you_are_not_in_is_1005(ws_client, carol, single_chat):
    carol_ws = await ws_client(carol)
    await send(carol_ws, "edit-message", {"conversation_id": str(single_chat.id), "message_id": "5", "content": "x"})
    error = await receive(carol_ws)
    assert (error["data"]["code"], error["data"]["request"]) == (1005, "edit-message")


async def test_react_and_unreact_reach_both_members(ws_client, alice, bob, single_chat):
    alice_ws, bob_ws = await ws_client(alice), await ws_client(bob)
    await send_text(alice_ws, single_chat, "vote", "v-1")
    ack = await _frames_until(alice_ws, "send-ack")
    await _frames_until(bob_ws, "new-message")
    await send(bob_ws, "react", {"message_id": ack["data"]["message_id"], "emoji": "👍"})
    for ws in (alice_ws, bob_ws):
        update = await _frames_until(ws, "update")
        assert update["data"]["kind"] == "reaction"
        assert update["data"]["message"]["reactions"] == [{"emoji": "👍", "count": 1}]
    await send(bob_ws, "react", {"message_id": ack["data"]["message_id"], "emoji": ""})
    update = await _frames_until(alice_ws, "update")
    assert update["data"]["message"]["reactions"] == []
    assert not await database_sync_to_async(MessageReaction.objects.exists)()


async def test_an_update_frame_carries_the_whole_state_quote_included(ws_client, alice, bob, single_chat):
    """A client replaces its copy with the update's message: a reaction to a reply must
    not arrive without the quoted preview (it would vanish from the page)."""
    alice_ws, bob_ws = await ws_client(alice), await ws_client(bob)
    await send_text(alice_ws, single_chat, "the question", "q-1")
    first = await _frames_until(alice_ws, "send-ack")
    await send(alice_ws, "send-message", {
        "conversation_id": str(single_chat.id), "client_msg_id": "q-2", "content": "the follow-up",
        "reply_to": first["data"]["message_id"],
    })
    reply = await _frames_until(alice_ws, "send-ack")
    await send(bob_ws, "react", {"message_id": reply["data"]["message_id"], "emoji": "👍"})
    update = await _frames_until(alice_ws, "update")
    message = update["data"]["message"]
    assert message["reactions"] == [{"emoji": "👍", "count": 1}]
    assert message["reply_to"]["id"] == first["data"]["message_id"]
    assert message["reply_to"]["content"] == "the question"


async def test_react_in_a_conversation_you_are_not_in_is_1005(ws_client, alice, carol, single_chat):
    alice_ws, carol_ws = await ws_client(alice), await ws_client(carol)
    await send_text(alice_ws, single_chat, "private", "p-1")
    ack = await _frames_until(alice_ws, "send-ack")
    await send(carol_ws, "react", {"message_id": ack["data"]["message_id"], "emoji": "👍"})
    error = await receive(carol_ws)
    assert (error["data"]["code"], error["data"]["request"]) == (1005, "react")


async def test_hide_goes_to_my_sockets_only_and_sync_lists_the_seq(ws_client, alice, bob, single_chat):
    alice_ws, bob_ws, bob_laptop = await ws_client(alice), await ws_client(bob), await ws_client(bob)
    for n in range(2):
        await send_text(alice_ws, single_chat, f"m{n}", f"h-{n}")
    first = await _frames_until(alice_ws, "send-ack")
    await _frames_until(alice_ws, "send-ack")
    for _ in range(2):
        await _frames_until(bob_ws, "new-message")
        await _frames_until(bob_laptop, "new-message")
    await send(bob_ws, "hide-message", {"message_id": first["data"]["message_id"]})
    for ws in (bob_ws, bob_laptop):
        update = await _frames_until(ws, "update")
        assert (update["data"]["kind"], update["data"]["message"]["id"]) == ("hide", first["data"]["message_id"])
    assert await alice_ws.receive_nothing(timeout=0.5)
    await send(bob_ws, "sync", {"conversation_id": str(single_chat.id), "after_seq": 0})
    synced = await _frames_until(bob_ws, "sync-result")
    assert [m["seq"] for m in synced["data"]["messages"]] == [2]
    assert synced["data"]["hidden_seqs"] == [1]


def test_logic_batch_applies_send_then_edit_in_record_order(alice, bob, single_chat, settings):
    """One consumed batch holding a send and its edit (and a send after it): stored in
    order, the edit applied to the stored send, seq untouched."""
    from messaging.logic import process_upstream_batch
    from messaging.tests.test_logic import produce_and_take, upstream

    from messaging.bus import reset_bus

    reset_bus()
    edit = upstream(alice, single_chat, client_msg_id="", content="fixed")
    edit.action, edit.target_client_msg_id = "edit", "b-1"
    records = produce_and_take(
        upstream(alice, single_chat, client_msg_id="b-1", content="brokn"),
        edit,
        upstream(alice, single_chat, client_msg_id="b-2", content="next"),
        topic="upstream-mixed",
    )
    process_upstream_batch(records)
    rows = list(Message.objects.order_by("seq").values_list("seq", "content", "edited_at"))
    assert [(s, c) for s, c, _ in rows] == [(1, "fixed"), (2, "next")]
    assert rows[0][2] is not None and rows[1][2] is None
    reset_bus()
