"""Messages sent and reads made over REST reach the live sockets like WebSocket ones do."""
from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


async def _frame(ws) -> dict:
    return json.loads(await ws.receive_from(timeout=10))


async def test_rest_send_reaches_the_peer_socket_and_the_senders_other_device(ws_client, client_for, alice, bob, single_chat):
    bob_ws = await ws_client(bob)
    alice_phone = await ws_client(alice)

    def post():
        return client_for(alice).post(
            "/api/v1/messages/send",
            {"conversation_id": str(single_chat.id), "client_msg_id": "rest-1", "content": "over REST"},
            format="json",
        )

    response = await database_sync_to_async(post)()
    assert response.status_code == 201
    for ws in (bob_ws, alice_phone):
        frame = await _frame(ws)
        assert frame["type"] == "new-message"
        assert frame["data"]["message"]["content"] == "over REST"
        assert frame["data"]["message"]["id"] == response.json()["message"]["id"]

    # A repeat is answered from the first message and not delivered again.
    repeat = await database_sync_to_async(post)()
    assert repeat.status_code == 200
    assert await bob_ws.receive_nothing(timeout=0.5)


async def test_rest_read_notifies_the_readers_sockets(ws_client, client_for, alice, bob, single_chat):
    from messaging.services import send_message

    await database_sync_to_async(send_message)(
        sender_id=bob.id, conversation_id=single_chat.id, content="hi", client_msg_id="b1"
    )
    laptop = await ws_client(alice)

    def read():
        return client_for(alice).post(f"/api/v1/conversations/{single_chat.id}/read", {"seq": 1}, format="json")

    response = await database_sync_to_async(read)()
    assert response.status_code == 200
    assert response.json()["unread"] == 0
    assert await _frame(laptop) == {"type": "read", "data": {"conversation_id": str(single_chat.id), "seq": 1}}


async def test_removed_group_member_is_refused_at_once_by_the_gateway(ws_client, group_of, alice):
    from groups.services import remove_members
    from messaging.models import ConversationMember

    group = await database_sync_to_async(group_of)(3)
    member = await database_sync_to_async(
        lambda: ConversationMember.objects.filter(conversation__group=group).exclude(user=alice).first().user
    )()
    conversation_id = await database_sync_to_async(lambda: group.conversation.id)()
    ws = await ws_client(member)
    body = {"client_msg_id": "x1", "conversation_id": str(conversation_id), "content": "before"}
    await ws.send_to(text_data=json.dumps({"type": "send-message", "data": body}))
    assert (await _frame(ws))["type"] == "send-ack"

    await database_sync_to_async(remove_members)(group_id=group.id, actor_id=alice.id, user_ids=[member.id])
    body = {"client_msg_id": "x2", "conversation_id": str(conversation_id), "content": "after"}
    await ws.send_to(text_data=json.dumps({"type": "send-message", "data": body}))
    error = await _frame(ws)
    assert error["type"] == "error"
    assert error["data"]["code"] == 1005
    assert error["data"]["client_msg_id"] == "x2"
