"""Replies (reply_to with a quoted preview) and @mentions (resolved at persist time, the
unread_mentions badge) over REST, the WebSocket, gRPC and the batch writer."""
from __future__ import annotations

import json

import grpc
import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from groups.services import create_group
from messaging.models import ConversationMember, Message
from messaging.services import SendRequest, get_or_create_single_conversation, mark_read, send_message, send_messages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(make_user, alice):
    """A group of alice (owner), dave and erin; frank exists but is not a member."""
    dave, erin = make_user("dave", nickname="Dave"), make_user("erin", nickname="Erin")
    make_user("frank")
    group = create_group(owner_id=alice.id, name="team", member_ids=[dave.id, erin.id])
    return group.conversation, dave, erin


def _send(client, conversation, content, client_msg_id, **extra):
    return client.post(
        "/api/v1/messages/send",
        {"conversation_id": str(conversation.id), "client_msg_id": client_msg_id, "content": content, **extra},
        format="json",
    )


# --- REST -------------------------------------------------------------------------------


def test_rest_reply_carries_a_quoted_preview_in_the_answer_and_in_history(client_for, alice, bob, single_chat):
    original = send_message(sender_id=bob.id, conversation_id=single_chat.id, content="x" * 150, client_msg_id="o1")
    response = _send(client_for(alice), single_chat, "agreed", "r1", reply_to=str(original.message.id))
    assert response.status_code == 201, response.json()
    preview = {
        "id": str(original.message.id),
        "seq": 1,
        "sender_id": str(bob.id),
        "sender_name": "Bob",
        "content": "x" * 100,
        "message_type": "text",
        "status": "normal",
    }
    assert response.json()["message"]["reply_to"] == preview
    assert Message.objects.get(client_msg_id="r1").reply_to_id == original.message.id

    history = client_for(bob).get(f"/api/v1/messages/history?conversation_id={single_chat.id}").json()["messages"]
    assert [m["reply_to"] for m in history] == [None, preview]
    assert [m["mentions"] for m in history] == [[], []]


def test_history_builds_every_preview_in_the_page_query(client_for, alice, bob, single_chat):
    first = send_message(sender_id=bob.id, conversation_id=single_chat.id, content="q", client_msg_id="q").message
    for n in range(5):
        send_message(sender_id=alice.id, conversation_id=single_chat.id, content=f"a{n}", client_msg_id=f"a{n}",
                     reply_to=first.id)
    client = client_for(alice)
    url = f"/api/v1/messages/history?conversation_id={single_chat.id}"
    client.get(url)  # warm whatever the request path caches
    with CaptureQueriesContext(connection) as few:
        client.get(f"{url}&limit=2")
    with CaptureQueriesContext(connection) as many:
        body = client.get(url).json()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert all(m["reply_to"]["id"] == str(first.id) for m in body["messages"][1:])


def test_rest_reply_to_a_message_of_another_conversation_is_1001(client_for, alice, bob, carol, single_chat):
    other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    elsewhere = send_message(sender_id=carol.id, conversation_id=other.id, content="hi", client_msg_id="e1").message
    response = _send(client_for(alice), single_chat, "hm", "r1", reply_to=str(elsewhere.id))
    assert response.status_code == 400
    assert response.json()["code"] == 1001 and "reply_to" in response.json()["details"]
    response = _send(client_for(alice), single_chat, "hm", "r2", reply_to=str(2**62))
    assert response.json()["code"] == 1001 and "reply_to" in response.json()["details"]
    assert not Message.objects.filter(conversation=single_chat).exists()


def test_rest_non_numeric_reply_to_is_1001(client_for, alice, single_chat):
    response = _send(client_for(alice), single_chat, "hm", "r1", reply_to="abc")
    assert response.status_code == 400
    assert response.json()["code"] == 1001 and "reply_to" in response.json()["details"]


def test_rest_non_member_sending_a_reply_is_1005(client_for, alice, bob, carol, single_chat):
    original = send_message(sender_id=bob.id, conversation_id=single_chat.id, content="q", client_msg_id="o1").message
    response = _send(client_for(carol), single_chat, "me too", "r1", reply_to=str(original.id))
    assert response.json()["code"] == 1005


def test_mentions_resolve_to_group_members_only_and_count_on_their_badge(client_for, alice, team):
    conversation, dave, erin = team
    response = _send(client_for(alice), conversation, "@dave and @frank, see me@example.com. @alice", "m1")
    assert response.status_code == 201
    # frank is not a member; the address is not a mention; a self-mention is kept but no badge.
    assert sorted(response.json()["message"]["mentions"]) == sorted([str(dave.id), str(alice.id)])
    assert Message.objects.get(client_msg_id="m1").mentions == sorted([dave.id, alice.id])
    _send(client_for(alice), conversation, "and again @dave.", "m2")
    _send(client_for(alice), conversation, "no names here", "m3")

    def badge(user):
        listed = {c["id"]: c for c in client_for(user).get("/api/v1/conversations").json()}
        detail = client_for(user).get(f"/api/v1/conversations/{conversation.id}").json()
        assert listed[str(conversation.id)]["unread_mentions"] == detail["unread_mentions"]
        return detail["unread_mentions"]

    assert (badge(dave), badge(erin), badge(alice)) == (2, 0, 0)
    # Reading past the first mention leaves the second; reading to the end clears it.
    mark_read(user_id=dave.id, conversation_id=conversation.id, seq=1)
    assert badge(dave) == 1
    client_for(dave).post(f"/api/v1/conversations/{conversation.id}/read", {"seq": 3}, format="json")
    assert badge(dave) == 0


def test_mentions_in_a_single_chat_are_not_resolved(alice, bob, single_chat):
    message = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="@bob hi", client_msg_id="s1")
    assert message.message.mentions is None
    assert ConversationMember.objects.get(conversation=single_chat, user=bob).unread_mentions == 0


# --- the batch writer -------------------------------------------------------------------


def test_a_bad_reply_is_refused_alone_in_its_batch(alice, bob, carol, single_chat):
    other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    elsewhere = send_message(sender_id=carol.id, conversation_id=other.id, content="x", client_msg_id="x").message
    quoted = send_message(sender_id=bob.id, conversation_id=single_chat.id, content="q", client_msg_id="q").message
    outcomes = send_messages(
        [
            SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="ok", client_msg_id="b1",
                        reply_to=quoted.id),
            SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="bad", client_msg_id="b2",
                        reply_to=elsewhere.id),
            SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="bad", client_msg_id="b3",
                        reply_to="12x"),
            SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="plain", client_msg_id="b4"),
        ]
    )
    assert outcomes[0].message.reply_to_id == quoted.id and outcomes[0].message.seq == 2
    assert (outcomes[1].code, list(outcomes[1].details)) == (1001, ["reply_to"])
    assert (outcomes[2].code, list(outcomes[2].details)) == (1001, ["reply_to"])
    assert outcomes[3].message.seq == 3  # no gap left by the refused ones


def _statements(requests) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        send_messages(requests)
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.postgres
def test_replies_and_mentions_cost_three_statements_per_batch_not_per_message(make_user, alice, team):
    conversation, dave, erin = team
    quoted = send_message(sender_id=dave.id, conversation_id=conversation.id, content="q", client_msg_id="q").message

    def batch(tag: str, n: int, *, extras: bool) -> list[SendRequest]:
        return [
            SendRequest(
                sender_id=(alice, dave, erin)[i % 3].id,
                conversation_id=conversation.id,
                content=f"@dave @erin {tag}{i}" if extras else f"plain {tag}{i}",
                client_msg_id=f"{tag}{i}",
                reply_to=quoted.id if extras else None,
            )
            for i in range(n)
        ]

    plain = _statements(batch("p", 2, extras=False))
    small = _statements(batch("s", 2, extras=True))
    large = _statements(batch("l", 60, extras=True))
    # + the quoted messages, + the mentioned members, + their badge counters.
    assert len(small) == len(plain) + 3, "\n".join(small)
    assert len(large) == len(small), "\n".join(large)
    assert Message.objects.filter(reply_to=quoted).count() == 62
    # Each member is mentioned by the messages others sent: 2/3 of 62, as the badge says.
    counts = dict(ConversationMember.objects.filter(conversation=conversation).values_list("user_id", "unread_mentions"))
    senders = [(alice, dave, erin)[i % 3].id for i in range(2)] + [(alice, dave, erin)[i % 3].id for i in range(60)]
    assert counts[dave.id] == sum(1 for s in senders if s != dave.id)
    assert counts[erin.id] == sum(1 for s in senders if s != erin.id)


# --- WebSocket --------------------------------------------------------------------------


async def _receive(ws):
    return json.loads(await ws.receive_from(timeout=10))


async def test_ws_reply_and_mention_reach_members_with_preview_and_ids(ws_client, alice, team):
    conversation, dave, erin = team
    quoted = await database_sync_to_async(send_message)(
        sender_id=dave.id, conversation_id=conversation.id, content="lunch?", client_msg_id="q"
    )
    alice_ws = await ws_client(alice)
    erin_ws = await ws_client(erin)
    await alice_ws.send_to(text_data=json.dumps({"type": "send-message", "data": {
        "client_msg_id": "w1", "conversation_id": str(conversation.id), "content": "yes @dave",
        "reply_to": str(quoted.message.id)}}))
    ack = await _receive(alice_ws)
    assert ack["type"] == "send-ack", ack
    pushed = await _receive(erin_ws)
    assert pushed["type"] == "new-message"
    message = pushed["data"]["message"]
    assert message["reply_to"] == {
        "id": str(quoted.message.id), "seq": 1, "sender_id": str(dave.id), "sender_name": "Dave",
        "content": "lunch?", "message_type": "text", "status": "normal",
    }
    assert message["mentions"] == [str(dave.id)]

    # sync returns the same shape
    await erin_ws.send_to(text_data=json.dumps({"type": "sync", "data": {"conversation_id": str(conversation.id)}}))
    result = await _receive(erin_ws)
    assert result["data"]["messages"][-1]["reply_to"]["id"] == str(quoted.message.id)


async def test_ws_bad_reply_to_gets_1001(ws_client, alice, bob, carol, single_chat):
    other, _ = await database_sync_to_async(get_or_create_single_conversation)(user_id=alice.id, peer_id=carol.id)
    elsewhere = await database_sync_to_async(send_message)(
        sender_id=carol.id, conversation_id=other.id, content="x", client_msg_id="x"
    )
    ws = await ws_client(alice)
    for client_msg_id, reply_to in (("w1", "not-an-id"), ("w2", str(elsewhere.message.id))):
        await ws.send_to(text_data=json.dumps({"type": "send-message", "data": {
            "client_msg_id": client_msg_id, "conversation_id": str(single_chat.id), "content": "hm",
            "reply_to": reply_to}}))
        error = await _receive(ws)
        assert error["type"] == "error", error
        assert (error["data"]["code"], error["data"]["client_msg_id"]) == (1001, client_msg_id)
    # The parse error names the field; the writer's refusal comes through the bus.
    assert not await database_sync_to_async(Message.objects.filter(conversation=single_chat).exists)()


# --- gRPC -------------------------------------------------------------------------------


def test_grpc_send_with_reply_to_id_and_mentions(settings, alice, team):
    from messaging.grpc.server import build_server
    from messaging.tests.test_grpc import SERVICE_TOKEN, auth, gochat_code, rpc_error
    from protos.gochat.v1 import logic_pb2, logic_pb2_grpc

    conversation, dave, erin = team
    quoted = send_message(sender_id=dave.id, conversation_id=conversation.id, content="q", client_msg_id="q").message
    settings.GRPC_SERVICE_TOKEN = SERVICE_TOKEN
    server, port, _ = build_server(address="127.0.0.1:0", max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            logic = logic_pb2_grpc.LogicServiceStub(channel)
            sent = logic.SendMessage(
                logic_pb2.SendMessageRequest(conversation_id=conversation.id, client_msg_id="g1",
                                             content="@erin look", reply_to_id=quoted.id),
                metadata=auth(alice),
            )
            assert (sent.message.reply_to.id, sent.message.reply_to.sender_name) == (quoted.id, "Dave")
            assert list(sent.message.mention_user_ids) == [erin.id]
            history = logic.History(logic_pb2.HistoryRequest(conversation_id=conversation.id), metadata=auth(erin))
            assert history.messages[-1].reply_to.id == quoted.id
            error = rpc_error(
                logic.SendMessage,
                logic_pb2.SendMessageRequest(conversation_id=conversation.id, client_msg_id="g2", content="x",
                                             reply_to_id=2**62),
                metadata=auth(alice),
            )
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and gochat_code(error) == 1001
    finally:
        server.stop(None).wait()


def test_a_resend_in_a_later_batch_returns_the_stored_message_as_the_orm_reads_it(alice, team):
    # The batch writer reads de-duplication hits with its own SELECT (messaging/hot_sql.py):
    # the message handed back must equal what the ORM reads (aware datetime, JSON mentions).
    conversation, dave, _ = team
    request = SendRequest(sender_id=alice.id, conversation_id=conversation.id, content="hi @dave", client_msg_id="rs-1")
    first = send_messages([request])[0]
    again = send_messages([request])[0]
    stored = Message.objects.get(id=first.message.id)
    assert first.created and not again.created
    resent = again.message
    assert (resent.id, resent.seq, resent.content, resent.client_msg_id) == (stored.id, stored.seq, "hi @dave", "rs-1")
    assert resent.created_at == stored.created_at and resent.created_at.tzinfo is not None
    assert resent.mentions == stored.mentions == [dave.id]
    assert resent.sender.username == alice.username
    assert Message.objects.filter(conversation=conversation).count() == 1


def test_a_large_batch_stores_each_message_as_sent(alice, team):
    # 40 rows: on PostgreSQL the insert goes through unnest() (one array per column),
    # the JSON mentions, NULL edited_at and the reply ids included.
    from messaging.services import UNNEST_MIN_ROWS

    conversation, dave, erin = team
    first = send_messages([SendRequest(sender_id=alice.id, conversation_id=conversation.id, content="root",
                                       client_msg_id="big-root")])[0].message
    size = max(40, UNNEST_MIN_ROWS)
    requests = [
        SendRequest(sender_id=alice.id, conversation_id=conversation.id, client_msg_id=f"big-{n}",
                    content=f"n{n} @dave" if n % 2 else f"n{n} @erin", reply_to=first.id if n % 3 == 0 else None)
        for n in range(size)
    ]
    outcomes = send_messages(requests)
    assert all(o.created for o in outcomes)
    stored = {m.client_msg_id: m for m in Message.objects.filter(conversation=conversation, client_msg_id__startswith="big-")}
    for n in range(size):
        message = stored[f"big-{n}"]
        assert message.seq == n + 2 and message.content == requests[n].content
        assert message.mentions == ([dave.id] if n % 2 else [erin.id])
        assert message.reply_to_id == (first.id if n % 3 == 0 else None)
        assert message.edited_at is None and message.created_at.tzinfo is not None
