"""send_message under real concurrency on PostgreSQL: gap-free seq and exactly-once rows.

Each thread has its own database connection, so the row lock and the unique
constraints are exercised the way parallel logic processes exercise them.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from messaging.models import Conversation, Message
from messaging.services import send_message

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def run_together(n: int, work: Callable[[int], object]) -> list:
    """Run work(0..n-1) in n threads released at the same moment; re-raise any error."""
    barrier = threading.Barrier(n)

    def job(i: int) -> object:
        try:
            barrier.wait(timeout=30)
            return work(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return [f.result() for f in [pool.submit(job, i) for i in range(n)]]


def test_parallel_senders_get_gap_free_unique_seqs(make_user, group_of):
    per_thread = 5
    group = group_of(THREADS)
    conversation = Conversation.objects.get(group=group)
    senders = list(group.members.values_list("user_id", flat=True))
    assert len(senders) == THREADS

    def work(i: int) -> list[int]:
        return [
            send_message(
                sender_id=senders[i], conversation_id=conversation.id, content=f"{i}-{k}", client_msg_id=f"t{i}-{k}"
            ).message.seq
            for k in range(per_thread)
        ]

    results = run_together(THREADS, work)
    total = THREADS * per_thread
    returned = sorted(seq for seqs in results for seq in seqs)
    assert returned == list(range(1, total + 1))
    # Each sender saw its own messages in increasing seq order.
    assert all(seqs == sorted(seqs) for seqs in results)

    stored = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", flat=True))
    assert stored == list(range(1, total + 1))
    conversation.refresh_from_db()
    assert conversation.last_seq == total


def test_concurrent_repeats_of_one_client_msg_id_store_one_row(alice, single_chat):
    def work(i: int):
        result = send_message(
            sender_id=alice.id, conversation_id=single_chat.id, content="only once", client_msg_id="retry-storm"
        )
        return result.created, result.message.id, result.message.seq

    results = run_together(THREADS, work)
    assert sum(created for created, _, _ in results) == 1
    assert {(mid, seq) for _, mid, seq in results} == {(results[0][1], 1)}
    assert Message.objects.filter(sender=alice, client_msg_id="retry-storm").count() == 1
    single_chat.refresh_from_db()
    assert single_chat.last_seq == 1


def test_same_client_msg_id_in_two_conversations_at_once_is_two_messages(alice, bob, carol, single_chat):
    # De-duplication is scoped per conversation: a reused client_msg_id in another
    # conversation is a new message there, and never answered with the other one's.
    from messaging.services import get_or_create_single_conversation

    other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    targets = [single_chat.id, other.id]

    def work(i: int):
        result = send_message(
            sender_id=alice.id, conversation_id=targets[i % 2], content=f"to {targets[i % 2]}", client_msg_id="cross-conv"
        )
        return result.message.conversation_id, result.message.id

    results = run_together(THREADS, work)
    by_conversation: dict[int, set[int]] = {}
    for conversation_id, message_id in results:
        by_conversation.setdefault(conversation_id, set()).add(message_id)
    # Every answer is the message of the conversation it was sent to, one per conversation.
    assert set(by_conversation) == set(targets)
    assert all(len(ids) == 1 for ids in by_conversation.values())
    rows = Message.objects.filter(sender=alice, client_msg_id="cross-conv")
    assert sorted((m.conversation_id, m.seq, m.content) for m in rows) == sorted(
        (t, 1, f"to {t}") for t in targets
    )
    seqs = sorted(Conversation.objects.filter(id__in=targets).values_list("last_seq", flat=True))
    assert seqs == [1, 1]
