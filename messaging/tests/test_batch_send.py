"""The logic's batch path: a consumed batch is persisted in one transaction with a fixed
number of SQL statements, bad records are refused alone, repeats are answered with the
first message, and a client_msg_id reused in another conversation is a new message there.

The statement and round-trip counts are deterministic, so they are pinned here (in the
style of Zulip's assert_database_query_count); speed itself is measured by benchmarks.
"""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.bus import downstream_topic
from messaging.logic import process_upstream_batch
from messaging.models import Conversation, ConversationMember, Message
from messaging.presence import get_presence
from messaging.services import SendRequest, get_or_create_single_conversation, send_messages
from messaging.tests.test_logic import GATEWAY, envelopes, fresh_bus, produce_and_take, upstream  # noqa: F401
from protos.gochat.v1 import envelopes_pb2 as pb

# Statements to persist and route one consumed batch of one-to-one messages, whatever its
# size: BEGIN, lock the conversations, read the senders' memberships, de-duplicate,
# insert, update the conversations, update the read pointers, COMMIT; then routing reads
# the members (the conversations' types came with the lock).
PERSIST_AND_ROUTE_STATEMENTS = 9


def _pairs(make_user, n: int) -> list[tuple[object, Conversation]]:
    pairs = []
    for i in range(n):
        sender, peer = make_user(f"s{i}"), make_user(f"p{i}")
        conversation, _ = get_or_create_single_conversation(user_id=sender.id, peer_id=peer.id)
        pairs.append((sender, conversation))
    return pairs


def _batch(pairs, per_pair: int, tag: str = "m") -> list[pb.UpstreamMessage]:
    return [
        upstream(sender, conversation, client_msg_id=f"{tag}-{i}-{n}", content=f"{tag} {i} {n}")
        for n in range(per_pair)
        for i, (sender, conversation) in enumerate(pairs)
    ]


def _take(records: list[pb.UpstreamMessage], tag: str):
    # A topic per batch: the helper reads a topic from its start.
    return produce_and_take(*records, topic=f"upstream-{tag}")


def _statements(records) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        process_upstream_batch(records)
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_of_200_one_to_one_messages_costs_a_constant_number_of_statements(make_user, fresh_bus):
    pairs = _pairs(make_user, 20)
    presence = get_presence()
    for sender, conversation in pairs:
        for member in ConversationMember.objects.filter(conversation=conversation):
            presence.connect(member.user_id, f"conn-{member.user_id}", "gw-one")
    small = _statements(_take(_batch(pairs[:2], 1, "small"), "small"))
    large = _statements(_take(_batch(pairs, 10, "large"), "large"))
    assert len(small) == PERSIST_AND_ROUTE_STATEMENTS, "\n".join(small)
    assert len(large) == PERSIST_AND_ROUTE_STATEMENTS, "\n".join(large)
    assert Message.objects.count() == 202
    for _, conversation in pairs:
        seqs = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
        conversation.refresh_from_db()
        assert conversation.last_seq == len(seqs)
    # Every sender read what they wrote; every peer has it unread.
    for sender, conversation in pairs:
        member = ConversationMember.objects.get(conversation=conversation, user=sender)
        assert member.last_read_seq == member.last_delivered_seq == conversation.last_seq


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_hot_path_sends_the_same_statement_texts_whatever_the_batch_on_postgresql(make_user, fresh_bus):
    # Values go apart from the text (server-side binding) and every list as one array, so
    # a batch of 40 and one of 200 send identical texts: psycopg prepares each once per
    # connection. Quoted values or a placeholder per row would make every batch new text.
    pairs = _pairs(make_user, 20)
    presence = get_presence()
    for sender, conversation in pairs:
        for member in ConversationMember.objects.filter(conversation=conversation):
            presence.connect(member.user_id, f"conn-{member.user_id}", "gw-one")
    forty = _statements(_take(_batch(pairs, 2, "forty"), "forty"))
    two_hundred = _statements(_take(_batch(pairs, 10, "two-hundred"), "two-hundred"))
    assert forty == two_hundred, "\n".join(sorted(set(forty) ^ set(two_hundred)))
    assert len(forty) == PERSIST_AND_ROUTE_STATEMENTS
    assert not any("forty" in sql or "two-hundred" in sql for sql in forty), "a value was quoted into the text"


@pytest.mark.django_db(transaction=True)
def test_a_batch_does_not_grow_its_statements_on_any_backend(make_user, fresh_bus):
    # SQLite splits a multi-row insert by its variable limit, so only "does not grow
    # with the batch" holds there: 200 messages in at most a few more statements than 2.
    pairs = _pairs(make_user, 20)
    small = _statements(_take(_batch(pairs[:2], 1, "small"), "small"))
    large = _statements(_take(_batch(pairs, 10, "large"), "large"))
    assert len(small) <= PERSIST_AND_ROUTE_STATEMENTS
    assert len(large) <= len(small) + 4, "\n".join(large)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_batch_costs_one_presence_round_trip_on_redis(make_user, fresh_bus, redis_presence, settings):
    import redis.connection

    settings.PRESENCE_BATCH_SIZE = 200
    pairs = _pairs(make_user, 20)
    for sender, conversation in pairs:
        for member in ConversationMember.objects.filter(conversation=conversation):
            redis_presence.connect(member.user_id, f"conn-{member.user_id}", "gw-one")
    records = _take(_batch(pairs, 10), "redis")
    me = threading.current_thread()
    sent: list[int] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting_send(self, command, check_health=True):  # noqa: ANN001
        # The delivery trace writes from its own thread; only the batch's path counts.
        if threading.current_thread() is me:
            sent.append(1)
        return real_send(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting_send
    try:
        process_upstream_batch(records)
    finally:
        redis.connection.AbstractConnection.send_packed_command = real_send
    # 40 recipients (every member online) in one pipelined lookup.
    assert len(sent) == 1
    delivered = [e for e in envelopes(downstream_topic("gw-one")) if e.kind == pb.DownstreamMessage.NEW_MESSAGE]
    assert len(delivered) == 200


@pytest.mark.django_db(transaction=True)
def test_bad_records_are_refused_alone_and_the_rest_of_the_batch_is_stored(alice, bob, carol, single_chat, fresh_bus):
    good = [upstream(alice, single_chat, client_msg_id=f"ok-{n}", content=f"ok {n}") for n in range(3)]
    not_member = upstream(carol, single_chat, client_msg_id="intruder")
    unknown = upstream(alice, single_chat, client_msg_id="nowhere")
    unknown.conversation_id = 2**62
    empty = upstream(alice, single_chat, client_msg_id="empty", content="")
    batch = [good[0], not_member, good[1], unknown, empty, good[2]]
    process_upstream_batch(produce_and_take(*batch))

    stored = list(Message.objects.filter(conversation=single_chat).order_by("seq").values_list("client_msg_id", "seq"))
    assert stored == [("ok-0", 1), ("ok-1", 2), ("ok-2", 3)]
    replies = {e.client_msg_id: e for e in envelopes(downstream_topic(GATEWAY))}
    assert {k: replies[k].kind for k in ("ok-0", "ok-1", "ok-2")} == {k: pb.DownstreamMessage.SEND_ACK for k in ("ok-0", "ok-1", "ok-2")}
    assert (replies["intruder"].kind, replies["intruder"].error_code) == (pb.DownstreamMessage.SEND_ERROR, 1005)
    assert (replies["nowhere"].kind, replies["nowhere"].error_code) == (pb.DownstreamMessage.SEND_ERROR, 1003)
    assert (replies["empty"].kind, replies["empty"].error_code) == (pb.DownstreamMessage.SEND_ERROR, 1001)


@pytest.mark.django_db(transaction=True)
def test_repeats_within_and_across_batches_get_the_first_message(alice, single_chat, fresh_bus):
    first = upstream(alice, single_chat, client_msg_id="again", content="first words")
    repeat = upstream(alice, single_chat, client_msg_id="again", content="changed on resend")
    process_upstream_batch(produce_and_take(first, repeat, topic="upstream-one"))
    process_upstream_batch(produce_and_take(repeat, topic="upstream-two"))

    rows = list(Message.objects.filter(conversation=single_chat))
    assert [(m.seq, m.content) for m in rows] == [(1, "first words")]
    acks = [e for e in envelopes(downstream_topic(GATEWAY)) if e.kind == pb.DownstreamMessage.SEND_ACK]
    assert [(a.message.id, a.message.seq) for a in acks] == [(rows[0].id, 1)] * 3
    single_chat.refresh_from_db()
    assert single_chat.last_seq == 1


@pytest.mark.django_db(transaction=True)
def test_a_client_msg_id_reused_in_another_conversation_is_a_new_message_there(alice, bob, carol, single_chat, fresh_bus):
    # Issue 8 item 5: the second send was answered with the first conversation's message
    # and silently not stored.
    other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    process_upstream_batch(produce_and_take(upstream(alice, single_chat, client_msg_id="reused", content="to bob"), topic="up-a"))
    process_upstream_batch(produce_and_take(upstream(alice, other, client_msg_id="reused", content="to carol"), topic="up-b"))

    acks = [e for e in envelopes(downstream_topic(GATEWAY)) if e.kind == pb.DownstreamMessage.SEND_ACK]
    assert [(a.message.conversation_id, a.message.content) for a in acks] == [
        (single_chat.id, "to bob"),
        (other.id, "to carol"),
    ]
    assert Message.objects.get(conversation=other).content == "to carol"


@pytest.mark.django_db
def test_send_messages_keeps_request_order_per_conversation_and_one_outcome_each(alice, bob, single_chat):
    requests = [
        SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="a1", client_msg_id="a1"),
        SendRequest(sender_id=bob.id, conversation_id=single_chat.id, content="b1", client_msg_id="b1"),
        SendRequest(sender_id=alice.id, conversation_id="not-an-id", content="x", client_msg_id="x"),
        SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="a2", client_msg_id="a2"),
    ]
    outcomes = send_messages(requests)
    assert len(outcomes) == 4
    assert [o.message.seq for o in (outcomes[0], outcomes[1], outcomes[3])] == [1, 2, 3]
    assert getattr(outcomes[2], "code", None) == 1001
    # The sender's name came with the membership read: routing needs no query for it.
    assert outcomes[0].message.sender.display_name == "Alice"
