"""The WebSocket gateway end to end in one process: socket -> bus -> logic -> bus -> sockets
(embedded default: memory bus and presence, the logic loop in the background)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from messaging.models import ConversationMember, Message

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10  # seconds to wait for a frame that must come


async def send(ws, kind, data=None):
    body = {"type": kind}
    if data is not None:
        body["data"] = data
    await ws.send_to(text_data=json.dumps(body))


async def receive(ws, timeout=WAIT):
    return json.loads(await ws.receive_from(timeout=timeout))


async def send_text(ws, conversation, text, client_msg_id):
    await send(
        ws,
        "send-message",
        {"client_msg_id": client_msg_id, "conversation_id": str(conversation.id), "content": text},
    )


# --- Authentication -----------------------------------------------------------------------


async def _close_code(ws):
    connected, _ = await ws.connect(timeout=5)
    assert connected  # accepted, then closed at once so the client sees the code
    output = await ws.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
    return output["code"]


async def test_no_token_closes_4001(ws_client):
    assert await _close_code(await ws_client(connect=False)) == 4001


async def test_bad_token_closes_4001(ws_client):
    assert await _close_code(await ws_client(query="token=not-a-jwt", connect=False)) == 4001


async def test_expired_token_closes_4002(ws_client, alice):
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=-timedelta(seconds=5))
    assert await _close_code(await ws_client(query=f"token={token}", connect=False)) == 4002


async def test_inactive_user_closes_4001(ws_client, make_user):
    user = await database_sync_to_async(make_user)(is_active=False)
    assert await _close_code(await ws_client(query=f"token={AccessToken.for_user(user)}", connect=False)) == 4001


async def test_authorization_header_authenticates(ws_client, alice):
    ws = await ws_client(query="", headers=[(b"authorization", f"Bearer {AccessToken.for_user(alice)}".encode())])
    await send(ws, "ping")
    assert (await receive(ws))["type"] == "pong"


async def test_foreign_origin_is_refused(ws_client, alice):
    ws = await ws_client(alice, headers=[(b"origin", b"https://evil.example")], connect=False)
    connected, _ = await ws.connect(timeout=5)
    assert not connected


async def test_origin_of_an_allowed_host_is_accepted(ws_client, alice):
    ws = await ws_client(alice, headers=[(b"origin", b"http://localhost:8000")], connect=False)
    connected, _ = await ws.connect(timeout=5)
    assert connected


# --- Bad input: an error frame, never a dead socket ------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("{oops", "malformed JSON"),
        ("[]", "a frame must be a JSON object"),
        ('{"type": "dance"}', "unknown frame type"),
        ('{"type": "send-message", "data": {"client_msg_id": "c1"}}', "invalid send-message"),
        ('{"type": "read", "data": {"conversation_id": "1", "seq": "x"}}', "invalid read"),
    ],
)
async def test_bad_frames_get_1001_and_the_socket_lives(ws_client, alice, text, message):
    ws = await ws_client(alice)
    await ws.send_to(text_data=text)
    error = await receive(ws)
    assert error["type"] == "error"
    assert error["data"]["code"] == 1001
    assert error["data"]["message"] == message
    await send(ws, "ping")
    assert (await receive(ws))["type"] == "pong"


async def test_missing_content_echoes_client_msg_id(ws_client, alice, single_chat):
    ws = await ws_client(alice)
    await send(ws, "send-message", {"client_msg_id": "c-7", "conversation_id": str(single_chat.id)})
    error = await receive(ws)
    assert error["data"]["code"] == 1001
    assert error["data"]["client_msg_id"] == "c-7"
    assert "content" in error["data"]["details"]


async def test_oversize_frame_gets_its_own_error(ws_client, alice, single_chat, settings):
    settings.WS_MAX_FRAME_BYTES = 512
    ws = await ws_client(alice)
    await send_text(ws, single_chat, "x" * 600, "big")
    error = await receive(ws)
    assert error["data"] == {**error["data"], "code": 1001, "message": "frame too large"}
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_binary_frame_is_1001(ws_client, alice):
    ws = await ws_client(alice)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await receive(ws))["data"]["code"] == 1001


async def test_non_member_gets_1005_with_client_msg_id(ws_client, carol, single_chat):
    ws = await ws_client(carol)
    await send_text(ws, single_chat, "let me in", "c-x")
    error = await receive(ws)
    assert error["data"]["code"] == 1005
    assert error["data"]["client_msg_id"] == "c-x"
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_unknown_conversation_is_1003(ws_client, alice):
    ws = await ws_client(alice)
    await send(ws, "send-message", {"client_msg_id": "c", "conversation_id": "123456789", "content": "x"})
    assert (await receive(ws))["data"]["code"] == 1003


async def test_flood_past_the_rate_limit_gets_1006_without_closing(ws_client, alice, settings, monkeypatch):
    from messaging.gateway.ratelimit import get_limiter, reset_limiters

    settings.WS_RATE_LIMIT_BACKEND = "memory"
    reset_limiters()
    limiter = get_limiter()
    now = [1000.0]
    monkeypatch.setattr(limiter, "_clock", lambda: now[0])
    settings.WS_RATE_LIMIT = 3
    settings.WS_RATE_WINDOW_SECONDS = 10
    ws = await ws_client(alice)
    for _ in range(3):
        await send(ws, "ping")
        assert (await receive(ws))["type"] == "pong"
    await send(ws, "ping")
    error = await receive(ws)
    assert error["data"]["code"] == 1006
    assert error["data"]["details"]["retry_after"] == 10
    now[0] += 10  # the next window
    await send(ws, "ping")
    assert (await receive(ws))["type"] == "pong"


async def test_idle_socket_is_closed_4008(ws_client, alice, settings):
    settings.WS_IDLE_TIMEOUT_SECONDS = 0.2
    ws = await ws_client(alice)
    output = await ws.receive_output(timeout=WAIT)
    assert output == {"type": "websocket.close", "code": 4008, "reason": "idle timeout"}


# --- The message path -----------------------------------------------------------------------


async def test_send_is_acked_after_commit_and_delivered_to_the_peer(ws_client, alice, bob, single_chat):
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await send_text(alice_ws, single_chat, "hello bob", "a-1")
    ack = await receive(alice_ws)
    assert ack["type"] == "send-ack"
    assert ack["data"]["client_msg_id"] == "a-1"
    assert ack["data"]["conversation_id"] == str(single_chat.id)
    assert ack["data"]["seq"] == 1
    stored = await database_sync_to_async(Message.objects.get)(id=int(ack["data"]["message_id"]))
    assert (stored.seq, stored.content, stored.sender_id) == (1, "hello bob", alice.id)

    pushed = await receive(bob_ws)
    assert pushed["type"] == "new-message"
    message = pushed["data"]["message"]
    assert message["id"] == ack["data"]["message_id"]
    assert message["content"] == "hello bob"
    assert message["sender_id"] == str(alice.id)
    assert message["sender_name"] == "Alice"
    assert message["seq"] == 1
    # The sending socket has its ack, not a copy of its own message.
    assert await alice_ws.receive_nothing(timeout=0.3)


async def test_message_alias_and_seq_increase(ws_client, alice, bob, single_chat):
    alice_ws = await ws_client(alice)
    seqs = []
    for n in range(3):
        await send(alice_ws, "message", {"client_msg_id": f"s{n}", "conversation_id": str(single_chat.id), "content": f"m{n}"})
        seqs.append((await receive(alice_ws))["data"]["seq"])
    assert seqs == [1, 2, 3]


async def test_other_devices_of_the_sender_get_the_message(ws_client, alice, bob, single_chat):
    phone = await ws_client(alice)
    laptop = await ws_client(alice)
    await send_text(phone, single_chat, "from my phone", "p-1")
    ack = await receive(phone)
    copy = await receive(laptop)
    assert copy["type"] == "new-message"
    assert copy["data"]["message"]["id"] == ack["data"]["message_id"]


async def test_resend_same_client_msg_id_returns_first_message_once(ws_client, alice, bob, single_chat):
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await send_text(alice_ws, single_chat, "once", "dup-1")
    first = await receive(alice_ws)
    assert (await receive(bob_ws))["type"] == "new-message"

    await send_text(alice_ws, single_chat, "once", "dup-1")
    second = await receive(alice_ws)
    assert second["type"] == "send-ack"
    assert (second["data"]["message_id"], second["data"]["seq"]) == (first["data"]["message_id"], 1)
    assert await database_sync_to_async(Message.objects.count)() == 1
    # Routed again (at-least-once), but bob's socket already had it.
    assert await bob_ws.receive_nothing(timeout=0.5)


async def test_group_message_reaches_every_online_member(ws_client, alice, group_of):
    group = await database_sync_to_async(group_of)(4)
    members = await database_sync_to_async(
        lambda: list(ConversationMember.objects.filter(conversation__group=group).exclude(user=alice).select_related("user"))
    )()
    conversation = await database_sync_to_async(lambda: group.conversation)()
    sockets = [await ws_client(m.user) for m in members]
    alice_ws = await ws_client(alice)
    await send_text(alice_ws, conversation, "hi team", "g-1")
    ack = await receive(alice_ws)
    for ws in sockets:
        frame = await receive(ws)
        assert frame["data"]["message"]["id"] == ack["data"]["message_id"]


async def test_member_removed_after_check_is_refused_by_logic(ws_client, alice, bob, group_of):
    """The gateway's membership cache is a fast path; logic is the authority."""
    from groups.services import add_members, remove_members

    group = await database_sync_to_async(group_of)(2)
    await database_sync_to_async(add_members)(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    conversation = await database_sync_to_async(lambda: group.conversation)()
    bob_ws = await ws_client(bob)
    await send_text(bob_ws, conversation, "first", "b-1")
    assert (await receive(bob_ws))["type"] == "send-ack"
    await database_sync_to_async(remove_members)(group_id=group.id, actor_id=alice.id, user_ids=[bob.id])
    await send_text(bob_ws, conversation, "second", "b-2")
    error = await receive(bob_ws)
    assert error["type"] == "error"
    assert error["data"]["code"] == 1005
    assert error["data"]["client_msg_id"] == "b-2"
    assert await database_sync_to_async(Message.objects.count)() == 1


# --- Read receipts and sync -------------------------------------------------------------------


async def test_read_moves_last_read_and_notifies_other_devices(ws_client, alice, bob, single_chat):
    bob_ws = await ws_client(bob)
    phone = await ws_client(alice)
    laptop = await ws_client(alice)
    for n in range(2):
        await send_text(bob_ws, single_chat, f"b{n}", f"b{n}")
        await receive(bob_ws)
        await receive(phone)
        await receive(laptop)
    await send(phone, "read", {"conversation_id": str(single_chat.id), "seq": 2})
    notice = await receive(laptop)
    assert notice == {"type": "read", "data": {"conversation_id": str(single_chat.id), "seq": 2}}
    assert await phone.receive_nothing(timeout=0.3)
    member = await database_sync_to_async(ConversationMember.objects.get)(conversation=single_chat, user=alice)
    assert member.last_read_seq == 2


async def test_read_of_a_foreign_conversation_is_1005(ws_client, carol, single_chat):
    ws = await ws_client(carol)
    await send(ws, "read", {"conversation_id": str(single_chat.id), "seq": 1})
    assert (await receive(ws))["data"]["code"] == 1005


def _fill(single_chat, sender, count):
    from messaging.services import send_message

    for n in range(count):
        send_message(sender_id=sender.id, conversation_id=single_chat.id, content=f"m{n + 1}", client_msg_id=f"f{n}")


async def test_sync_pages_one_conversation_with_has_more(ws_client, alice, bob, single_chat):
    await database_sync_to_async(_fill)(single_chat, bob, 5)
    ws = await ws_client(alice)
    await send(ws, "sync", {"conversation_id": str(single_chat.id), "after_seq": 0, "limit": 3})
    page = await receive(ws)
    assert page["type"] == "sync-result"
    assert [m["seq"] for m in page["data"]["messages"]] == [1, 2, 3]
    assert page["data"]["has_more"] is True
    await send(ws, "sync", {"conversation_id": str(single_chat.id), "after_seq": 3, "limit": 3})
    page = await receive(ws)
    assert [m["content"] for m in page["data"]["messages"]] == ["m4", "m5"]
    assert page["data"]["has_more"] is False


async def test_sync_without_conversation_returns_unread_of_every_conversation(ws_client, alice, bob, carol, single_chat):
    from messaging.services import get_or_create_single_conversation, mark_read, send_message

    def setup():
        _fill(single_chat, bob, 3)
        mark_read(user_id=alice.id, conversation_id=single_chat.id, seq=1)
        other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
        send_message(sender_id=carol.id, conversation_id=other.id, content="hey", client_msg_id="c1")
        return other

    other = await database_sync_to_async(setup)()
    ws = await ws_client(alice)
    await send(ws, "sync", {"limit": 10})
    data = (await receive(ws))["data"]
    got = {(m["conversation_id"], m["seq"]) for m in data["messages"]}
    assert got == {(str(single_chat.id), 2), (str(single_chat.id), 3), (str(other.id), 1)}
    assert data["has_more"] is False
    by_id = {c["conversation_id"]: c for c in data["conversations"]}
    assert by_id[str(single_chat.id)]["unread"] == 2


async def test_sync_of_a_foreign_conversation_is_1005(ws_client, carol, single_chat):
    ws = await ws_client(carol)
    await send(ws, "sync", {"conversation_id": str(single_chat.id), "after_seq": 0})
    assert (await receive(ws))["data"]["code"] == 1005


async def test_presence_follows_the_socket(ws_client, alice, settings):
    from messaging.presence import get_presence

    ws = await ws_client(alice)
    await send(ws, "ping")  # frames are handled after connect() finished registering
    assert (await receive(ws))["type"] == "pong"
    sessions = await database_sync_to_async(get_presence().lookup)([alice.id])
    assert list(sessions[alice.id].values()) == [settings.GATEWAY_ID]
    await ws.disconnect()
    assert alice.id not in await database_sync_to_async(get_presence().lookup)([alice.id])


async def test_message_sent_over_rest_reaches_open_sockets(ws_client, client_for, alice, bob, single_chat):
    bob_ws = await ws_client(bob)
    alice_ws = await ws_client(alice)
    for ws in (bob_ws, alice_ws):
        await send(ws, "ping")
        await receive(ws)

    def post():
        response = client_for(alice).post(
            "/api/v1/messages/send",
            {"conversation_id": str(single_chat.id), "content": "via rest", "client_msg_id": "r-1"},
            format="json",
        )
        assert response.status_code == 201, response.content
        return response.json()["message"]

    sent = await database_sync_to_async(post)()
    for ws in (bob_ws, alice_ws):  # the sender's open socket is another device of hers
        frame = await receive(ws)
        assert frame["type"] == "new-message"
        assert frame["data"]["message"]["id"] == sent["id"]
        assert frame["data"]["message"]["content"] == "via rest"
