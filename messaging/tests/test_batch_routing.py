"""Batch routing: the logic loop routes a consumed batch together — one member read for
all its conversations (sent by the persist step with its lock) and one presence lookup
for all recipients — and every recipient still gets every message exactly once, the
sending socket none."""
from __future__ import annotations

import logging
from collections import Counter

import pytest

from messaging import hot_sql, routing
from messaging.bus import downstream_topic
from messaging.logic import process_upstream_batch
from messaging.models import Message
from messaging.presence import get_presence
from messaging.tests.test_logic import GATEWAY, envelopes, fresh_bus, produce_and_take, upstream  # noqa: F401
from protos.gochat.v1 import envelopes_pb2 as pb


def _team(alice, bob, carol, group_of):
    from groups.services import add_members

    group = group_of(1)
    add_members(group_id=group.id, actor_id=alice.id, user_ids=[bob.id, carol.id])
    return group.conversation


def _new_messages(topic: str) -> Counter:
    """(message id, recipient id) -> how many times the gateway was told to deliver it."""
    seen: Counter = Counter()
    for envelope in envelopes(topic):
        if envelope.kind == pb.DownstreamMessage.NEW_MESSAGE:
            seen.update((envelope.message.id, user_id) for user_id in envelope.recipient_user_ids)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_routed_with_one_presence_lookup_and_one_member_read(
    alice, bob, carol, single_chat, group_of, settings, monkeypatch, fresh_bus
):
    settings.PRESENCE_BATCH_SIZE = 200
    team = _team(alice, bob, carol, group_of)
    presence = get_presence()
    presence.connect(alice.id, "conn-1", GATEWAY)  # the sending socket
    presence.connect(alice.id, "alice-laptop", "gw-two")
    presence.connect(bob.id, "bob-phone", "gw-one")
    presence.connect(carol.id, "carol-phone", "gw-two")
    lookups: list[list[int]] = []
    real_lookup = presence.lookup
    monkeypatch.setattr(presence, "lookup", lambda ids: lookups.append(list(ids)) or real_lookup(ids))
    member_reads: list[list[int]] = []
    real_members = routing.members_of_conversations
    monkeypatch.setattr(
        routing,
        "members_of_conversations",
        lambda *, conversation_ids: member_reads.append(sorted(conversation_ids))
        or real_members(conversation_ids=conversation_ids),
    )
    persist_member_reads: list[list[int]] = []
    real_routed = hot_sql.send_routed_members
    monkeypatch.setattr(
        hot_sql,
        "send_routed_members",
        lambda conversation_ids, max_group_size: persist_member_reads.append(sorted(conversation_ids))
        or real_routed(conversation_ids, max_group_size),
    )

    batch = [upstream(alice, team, client_msg_id=f"team-{n}", content=f"team {n}") for n in range(6)]
    batch += [upstream(alice, single_chat, client_msg_id=f"pair-{n}", content=f"pair {n}") for n in range(3)]
    process_upstream_batch(produce_and_take(*batch))

    assert len(lookups) == 1
    assert sorted(lookups[0]) == sorted({alice.id, bob.id, carol.id})
    # One member read for both conversations, in the persist step's first round trip;
    # routing reads none of its own.
    assert persist_member_reads == [sorted([team.id, single_chat.id])]
    assert member_reads == []

    team_ids = list(Message.objects.filter(conversation=team).order_by("seq").values_list("id", flat=True))
    pair_ids = list(Message.objects.filter(conversation=single_chat).order_by("seq").values_list("id", flat=True))
    assert len(team_ids) == 6 and len(pair_ids) == 3
    # Bob is in both conversations, carol only in the team; alice's laptop gets all of
    # her messages, her sending socket (on GATEWAY) only acks.
    assert _new_messages(downstream_topic("gw-one")) == Counter({(m, bob.id): 1 for m in team_ids + pair_ids})
    assert _new_messages(downstream_topic("gw-two")) == Counter(
        {**{(m, carol.id): 1 for m in team_ids}, **{(m, alice.id): 1 for m in team_ids + pair_ids}}
    )
    sender_side = envelopes(downstream_topic(GATEWAY))
    assert [e.kind for e in sender_side] == [pb.DownstreamMessage.SEND_ACK] * 9
    assert sorted(e.message.id for e in sender_side) == sorted(team_ids + pair_ids)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("index_on_write", [True, False])
def test_index_task_is_enqueued_only_when_the_search_backend_needs_it(
    alice, single_chat, settings, caplog, fresh_bus, index_on_write
):
    settings.SEARCH_INDEX_ON_WRITE = index_on_write
    batch = [upstream(alice, single_chat, client_msg_id=f"ix-{n}") for n in range(3)]
    with caplog.at_level(logging.INFO):
        process_upstream_batch(produce_and_take(*batch))
    indexed = [
        r.task_kwargs["message_id"]
        for r in caplog.records
        if r.getMessage() in {"task_enqueued", "task_not_registered"} and getattr(r, "task", "") == "tasks.index_message"
    ]
    expected = list(Message.objects.filter(conversation=single_chat).order_by("seq").values_list("id", flat=True))
    assert indexed == (expected if index_on_write else [])


def test_search_index_on_write_defaults_off_on_both_databases():
    from django.conf import settings

    # PostgreSQL's GIN index and SQLite's FTS5 triggers (messaging/0004) index at write.
    assert settings.SEARCH_INDEX_ON_WRITE is False


@pytest.mark.django_db(transaction=True)
def test_acks_are_produced_after_routings_reads_so_they_leave_with_the_new_messages(
    alice, bob, single_chat, monkeypatch, fresh_bus
):
    # An ack produced before the presence read can be fetched by the gateway alone, and
    # the new-message then waits a whole fetch more: the acks wait for the reads instead.
    from messaging.bus import get_producer

    presence = get_presence()
    presence.connect(alice.id, "conn-1", GATEWAY)
    presence.connect(bob.id, "bob-phone", GATEWAY)
    produced_before_lookup: list[str] = []
    producer = get_producer()
    real_produce = producer.produce
    topics: list[str] = []
    monkeypatch.setattr(producer, "produce", lambda topic, *a, **kw: topics.append(topic) or real_produce(topic, *a, **kw))
    real_lookup = presence.lookup
    monkeypatch.setattr(presence, "lookup", lambda ids: produced_before_lookup.extend(topics) or real_lookup(ids))

    records = produce_and_take(upstream(alice, single_chat, client_msg_id="together"))
    topics.clear()  # the upstream record itself
    process_upstream_batch(records)

    assert produced_before_lookup == []
    kinds = [e.kind for e in envelopes(downstream_topic(GATEWAY))]
    # On the one gateway topic the ack still precedes the new-message of the same id.
    assert kinds == [pb.DownstreamMessage.SEND_ACK, pb.DownstreamMessage.NEW_MESSAGE]


@pytest.mark.django_db(transaction=True)
def test_a_failed_presence_read_still_acks_the_committed_batch_and_fails_it_for_a_retry(
    alice, bob, single_chat, monkeypatch, fresh_bus
):
    presence = get_presence()
    presence.connect(alice.id, "conn-1", GATEWAY)

    def unavailable(ids):
        raise ConnectionError("presence down")

    monkeypatch.setattr(presence, "lookup", unavailable)
    with pytest.raises(ConnectionError):
        process_upstream_batch(produce_and_take(upstream(alice, single_chat, client_msg_id="acked-anyway")))
    # Committed, so acknowledged; the batch fails so that routing is retried (consumed again).
    stored = Message.objects.get(client_msg_id="acked-anyway")
    acks = [e for e in envelopes(downstream_topic(GATEWAY)) if e.kind == pb.DownstreamMessage.SEND_ACK]
    assert [a.message.id for a in acks] == [stored.id]
