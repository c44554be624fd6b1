"""Recall and edit with real processes: two daphne gateways, run_logic on Tansu, Redis
presence, PostgreSQL. A recall reaches every member's sockets on both gateways and the
text is gone from history, search and the row; an edit sent right behind its send (before
the ack) ends with the edited text everywhere."""
from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from tests.e2e.test_realtime_e2e import WAIT, _close, _connect, _single_chat, gateways  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def _state(conversation_id: str, viewer, words: str):  # noqa: ANN001 - accounts.User
    from messaging.models import Message
    from messaging.selectors import conversation_history
    from tasks.search.selectors import search_messages

    history = [(m.seq, m.status, m.content) for m in conversation_history(user_id=viewer.id, conversation_id=conversation_id).messages]
    rows = list(Message.objects.filter(conversation_id=conversation_id).values_list("seq", "status", "content"))
    found = [r.message.id for r in search_messages(user_id=viewer.id, q=words).results]
    return history, rows, found


async def test_recall_reaches_every_socket_on_both_gateways_and_the_text_is_gone(gateways, alice, bob, token_for):  # noqa: F811
    conversation_id = await sync_to_async(_single_chat)(alice, bob)
    alice_a, alice_b, bob_a, bob_b = await _connect(
        token_for,
        [(gateways.a, alice, "alice@a"), (gateways.b, alice, "alice@b"), (gateways.a, bob, "bob@a"), (gateways.b, bob, "bob@b")],
    )
    try:
        sent = await alice_a.send_message(conversation_id, "launch code kumquat")
        ack = await alice_a.ack_for(sent, timeout=WAIT)
        for device in (alice_b, bob_a, bob_b):
            await device.wait_for("new-message", timeout=WAIT)
        assert (await sync_to_async(_state)(conversation_id, bob, "kumquat"))[2] == [int(ack["message_id"])]

        await alice_b.send("recall-message", {"conversation_id": conversation_id, "message_id": ack["message_id"]})
        for device in (alice_a, alice_b, bob_a, bob_b):
            update = (await device.wait_for("update", timeout=WAIT))["data"]
            assert update["kind"] == "recall", device.name
            assert (update["message"]["id"], update["message"]["status"], update["message"]["content"]) == (
                ack["message_id"], "recalled", ""
            ), device.name
            assert update["message"]["seq"] == 1
        history, rows, found = await sync_to_async(_state)(conversation_id, bob, "kumquat")
        assert history == [(1, "recalled", "")]
        assert rows == [(1, "recalled", "")]
        assert found == []
        synced = await bob_b.request("sync", {"conversation_id": conversation_id, "after_seq": 0}, reply="sync-result")
        assert [(m["seq"], m["content"], m["status"]) for m in synced["messages"]] == [(1, "", "recalled")]
    finally:
        await _close([alice_a, alice_b, bob_a, bob_b])


async def test_an_edit_racing_its_send_ends_edited_everywhere(gateways, alice, bob, token_for):  # noqa: F811
    conversation_id = await sync_to_async(_single_chat)(alice, bob)
    alice_a, alice_b, bob_a, bob_b = await _connect(
        token_for,
        [(gateways.a, alice, "alice@a"), (gateways.b, alice, "alice@b"), (gateways.a, bob, "bob@a"), (gateways.b, bob, "bob@b")],
    )
    try:
        # The edit leaves right behind the send, before any ack: it names the send by its
        # client_msg_id and rides the same upstream partition.
        sent = await alice_a.send_message(conversation_id, "meet at noon sharp")
        await alice_a.send(
            "edit-message", {"conversation_id": conversation_id, "client_msg_id": sent, "content": "meet at one sharp"}
        )
        assert not alice_a.of_type("send-ack")
        ack = await alice_a.ack_for(sent, timeout=WAIT)
        for device in (alice_a, alice_b, bob_a, bob_b):
            update = (await device.wait_for("update", timeout=WAIT))["data"]
            assert (update["kind"], update["message"]["id"]) == ("edit", ack["message_id"]), device.name
            assert update["message"]["content"] == "meet at one sharp"
            assert update["message"]["edited_at"] is not None
        for device in (alice_b, bob_a, bob_b):
            # new-message first (the original), then the update: the socket ends edited.
            frames = [f for f in device.frames if f["type"] in ("new-message", "update")]
            assert [f["type"] for f in frames] == ["new-message", "update"], device.name
        history, rows, found = await sync_to_async(_state)(conversation_id, bob, "one sharp")
        assert history == [(1, "normal", "meet at one sharp")]
        assert rows == [(1, "normal", "meet at one sharp")]
        assert found == [int(ack["message_id"])]
        assert (await sync_to_async(_state)(conversation_id, bob, "noon"))[2] == []
        await asyncio.gather(*(c.request("ping", reply="pong") for c in (alice_a, bob_b)))
    finally:
        await _close([alice_a, alice_b, bob_a, bob_b])
