"""The real-time path with real processes: two daphne gateways (different GATEWAY_IDs),
`run_logic` on the session's Tansu broker, Redis presence and the PostgreSQL test
database, driven by real WebSocket clients. What is asserted is what the users' sockets
show: acks, new-message frames, sync results, and the rows left in the database."""
from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async

from tests.harness.wsclient import WsClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

# Generous: the first frames wait for each gateway's downstream consumer to join its
# group on a 2-core machine shared with other test runs.
WAIT = 45.0


@pytest.fixture
def gateways(stack_env, launch):
    """Gateways gw-a and gw-b and one run_logic, all on this test's services."""
    stack = launch(stack_env())
    return SimpleNamespace(stack=stack, a=stack.gateway("gw-a"), b=stack.gateway("gw-b"), logic=stack.logic("logic-1"))


async def _connect(token_for, pairs) -> list[WsClient]:  # noqa: ANN001 - [(gateway Proc, user, name)]
    return list(
        await asyncio.gather(*(WsClient.connect(gw.ws_url, token_for(user), name=name) for gw, user, name in pairs))
    )


async def _close(clients: list[WsClient]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def _single_chat(user, peer) -> str:  # noqa: ANN001 - accounts.User
    from messaging.services import get_or_create_single_conversation

    conversation, _ = get_or_create_single_conversation(user_id=user.id, peer_id=peer.id)
    return str(conversation.id)


def _records_processed(proc) -> int:  # noqa: ANN001 - a harness Proc
    """Upstream records a run_logic process has handled, from its per-batch log lines."""
    import json

    total = 0
    for line in proc.log().splitlines():
        if "upstream_batch_processed" in line:
            try:
                total += int(json.loads(line[line.index("{"):]).get("records", 0))
            except ValueError:
                continue
    return total


def _seqs_in_db(conversation_id: str) -> list[int]:
    from messaging.models import Message

    return list(Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("seq", flat=True))


async def _sync_all(client: WsClient, conversation_id: str) -> list[dict]:
    """Every message of the conversation through `sync`, paged the way a client pages."""
    messages: list[dict] = []
    after = 0
    while True:
        page = await client.request(
            "sync", {"conversation_id": conversation_id, "after_seq": after, "limit": 100}, reply="sync-result"
        )
        messages.extend(page["messages"])
        if not page["has_more"]:
            return messages
        after = page["messages"][-1]["seq"]


async def test_one_to_one_across_gateways_with_devices_on_both_and_a_resend(gateways, alice, bob, token_for):
    conversation_id = await sync_to_async(_single_chat)(alice, bob)
    alice_a, alice_b, bob_a, bob_b = await _connect(
        token_for,
        [(gateways.a, alice, "alice@a"), (gateways.b, alice, "alice@b"), (gateways.a, bob, "bob@a"), (gateways.b, bob, "bob@b")],
    )
    try:
        first = await alice_a.send_message(conversation_id, "hello across gateways")
        ack = await alice_a.ack_for(first, timeout=WAIT)
        assert ack["seq"] == 1 and ack["conversation_id"] == conversation_id and isinstance(ack["message_id"], str)
        # The peer on both gateways and the sender's other device all get it.
        for device in (bob_a, bob_b, alice_b):
            got = (await device.wait_for("new-message", timeout=WAIT))["data"]["message"]
            assert (got["id"], got["seq"], got["content"]) == (ack["message_id"], 1, "hello across gateways")
            assert got["sender_id"] == str(alice.id)

        # The same client_msg_id again (a client retrying after a lost ack): the same message.
        await alice_a.send_message(conversation_id, "hello across gateways", client_msg_id=first)
        acks = await alice_a.wait_count("send-ack", 2, timeout=WAIT)
        assert [(a["data"]["message_id"], a["data"]["seq"]) for a in acks] == [(ack["message_id"], 1)] * 2

        # A reply from bob's device on gw-b. One conversation is one upstream partition and
        # each gateway reads one downstream partition, so anything routed for the resend
        # reaches a socket before this reply does.
        reply = await bob_b.send_message(conversation_id, "hi alice")
        reply_ack = await bob_b.ack_for(reply, timeout=WAIT)
        assert reply_ack["seq"] == 2
        for device in (alice_a, alice_b, bob_a):
            await device.wait_for("new-message", lambda d: d["message"]["seq"] == 2, timeout=WAIT)

        # Each socket shows each message once; the sending socket has acks, not new-message.
        assert [m["seq"] for m in alice_a.new_messages()] == [2]
        assert [m["seq"] for m in alice_b.new_messages()] == [1, 2]
        assert [m["seq"] for m in bob_a.new_messages()] == [1, 2]
        assert [m["seq"] for m in bob_b.new_messages()] == [1]
        assert await sync_to_async(_seqs_in_db)(conversation_id) == [1, 2]
    finally:
        await _close([alice_a, alice_b, bob_a, bob_b])


def _group_setup(group_of) -> tuple[str, list]:  # noqa: ANN001 - the conftest fixture
    from accounts.models import User
    from messaging.models import Conversation, ConversationMember

    group = group_of(50, name="fifty")
    conversation = Conversation.objects.get(group=group)
    member_ids = ConversationMember.objects.filter(conversation=conversation).values_list("user_id", flat=True)
    members = list(User.objects.filter(id__in=list(member_ids)).order_by("id"))
    return str(conversation.id), members


async def test_group_of_fifty_over_two_gateways_exactly_once_in_order_and_sync_for_the_offline(
    gateways, group_of, token_for
):
    conversation_id, members = await sync_to_async(_group_setup)(group_of)
    assert len(members) == 50
    online, offline = members[:40], members[40:]
    clients = await _connect(
        token_for, [(gateways.a if i % 2 else gateways.b, user, f"m{i}") for i, user in enumerate(online)]
    )
    by_user = {user.id: client for user, client in zip(online, clients)}
    senders = [online[0], online[1], online[2], online[3]]  # two on each gateway
    try:
        async def send_five(user) -> list[str]:  # noqa: ANN001
            sent = []
            for n in range(5):
                sent.append(await by_user[user.id].send_message(conversation_id, f"{user.username} #{n}"))
                await asyncio.sleep(0.05)
            return sent

        sent_by = dict(zip([u.id for u in senders], await asyncio.gather(*(send_five(u) for u in senders))))
        acks = {}
        for user_id, client_msg_ids in sent_by.items():
            for client_msg_id in client_msg_ids:
                acks[client_msg_id] = await by_user[user_id].ack_for(client_msg_id, timeout=WAIT)
        assert sorted(a["seq"] for a in acks.values()) == list(range(1, 21))
        own_ids = {
            user_id: {acks[c]["message_id"] for c in client_msg_ids} for user_id, client_msg_ids in sent_by.items()
        }
        all_ids = {a["message_id"] for a in acks.values()}

        for user, client in by_user.items():
            expected = all_ids - own_ids.get(user, set())
            await client.wait_until(
                lambda c=client, n=len(expected): len(c.new_messages()) >= n, WAIT, what=f"{len(expected)} messages"
            )
        # Every message has been seen everywhere once; give stray copies one more round trip.
        await asyncio.gather(*(c.request("ping", reply="pong") for c in clients))
        for user, client in by_user.items():
            received = client.new_messages()
            ids = [m["id"] for m in received]
            assert len(ids) == len(set(ids)), f"{client.name} got a message twice"
            assert set(ids) == all_ids - own_ids.get(user, set()), client.name
            seqs = [m["seq"] for m in received]
            assert seqs == sorted(seqs), f"{client.name} got messages out of seq order: {seqs}"

        # The ten who were offline connect and catch up with one sync.
        late = await _connect(
            token_for, [(gateways.a if i % 2 else gateways.b, user, f"late{i}") for i, user in enumerate(offline)]
        )
        clients += late
        for client in late:
            result = await client.request("sync", {"after_seq": 0}, reply="sync-result")
            assert [m["seq"] for m in result["messages"]] == list(range(1, 21)), client.name
            assert {m["id"] for m in result["messages"]} == all_ids
            assert result["has_more"] is False
            assert [(c["conversation_id"], c["unread"]) for c in result["conversations"]] == [(conversation_id, 20)]
        assert await sync_to_async(_seqs_in_db)(conversation_id) == list(range(1, 21))
    finally:
        await _close(clients)


async def test_two_logic_processes_in_one_group_share_the_work_and_lose_nothing(
    gateways, make_user, alice, token_for
):
    second = gateways.stack.logic("logic-2")
    # Sixteen conversations spread over the four upstream partitions (keyed by conversation).
    senders = [await sync_to_async(make_user)() for _ in range(16)]
    conversations = [await sync_to_async(_single_chat)(user, alice) for user in senders]
    inbox, *outs = await _connect(
        token_for,
        [(gateways.a, alice, "alice")]
        + [(gateways.a if i % 2 else gateways.b, user, f"s{i}") for i, user in enumerate(senders)],
    )
    try:
        acked: list[dict] = []
        # Rounds until both processes have persisted something: the second one's share
        # starts once the group has rebalanced, which takes a few seconds on Tansu.
        for round_no in itertools.count():
            sent = await asyncio.gather(
                *(out.send_message(conv, f"round {round_no}") for out, conv in zip(outs, conversations))
            )
            for out, client_msg_id in zip(outs, sent):
                acked.append(await out.ack_for(client_msg_id, timeout=WAIT))
            if gateways.logic.count("upstream_batch_processed") and second.count("upstream_batch_processed"):
                break
            assert round_no < 30, "the second run_logic never got a share of the partitions"
            await asyncio.sleep(0.5)

        assert _records_processed(gateways.logic) + _records_processed(second) >= len(acked)
        await inbox.wait_until(lambda: len(inbox.new_messages()) >= len(acked), WAIT, what=f"{len(acked)} messages")
        got = [m["id"] for m in inbox.new_messages()]
        assert sorted(got) == sorted(a["message_id"] for a in acked)
        rounds = len(acked) // len(outs)
        for conversation_id in conversations:
            assert await sync_to_async(_seqs_in_db)(conversation_id) == list(range(1, rounds + 1))
    finally:
        await _close([inbox, *outs])


async def test_run_logic_killed_mid_stream_loses_nothing_acknowledged(gateways, make_user, token_for):
    import signal

    users = [await sync_to_async(make_user)() for _ in range(6)]
    pairs = [(users[i], users[i + 1]) for i in range(0, 6, 2)]
    conversation_of = {}
    for a, b in pairs:
        conversation_of[a.id] = conversation_of[b.id] = await sync_to_async(_single_chat)(a, b)
    peer_of = {a.id: b for a, b in pairs} | {b.id: a for a, b in pairs}
    clients = await _connect(token_for, [(gateways.a if i % 2 else gateways.b, u, f"u{i}") for i, u in enumerate(users)])
    client_of = {user.id: client for user, client in zip(users, clients)}
    per_sender = 50
    sent: dict[int, list[str]] = {user.id: [] for user in users}

    async def stream(user) -> None:  # noqa: ANN001
        for n in range(per_sender):
            sent[user.id].append(await client_of[user.id].send_message(conversation_of[user.id], f"{user.id}:{n}"))
            await asyncio.sleep(0.06)

    def acked() -> int:
        return sum(len(c.of_type("send-ack")) for c in clients)

    try:
        flowing = asyncio.gather(*(stream(user) for user in users))
        await clients[0].wait_until(lambda: acked() >= 60, WAIT, what="60 acks before the crash")
        # A crash in the middle of the stream: no shutdown code, no final commit.
        await asyncio.to_thread(gateways.logic.kill, signal.SIGKILL)
        acked_before_restart = acked()
        restarted = await asyncio.to_thread(gateways.stack.logic, "logic-2")
        await flowing
        assert acked_before_restart < 6 * per_sender, "the crash came after the last ack: nothing was tested"

        acks: dict[str, dict] = {}
        for user in users:
            client = client_of[user.id]
            for client_msg_id in sent[user.id]:
                acks[client_msg_id] = await client.ack_for(client_msg_id, timeout=WAIT)
            # A record processed again after the crash is acked again, always as the same message.
            for frame in client.of_type("send-ack"):
                first = acks[frame["data"]["client_msg_id"]]
                assert (frame["data"]["message_id"], frame["data"]["seq"]) == (first["message_id"], first["seq"])

        for user in users:
            client, peer = client_of[user.id], peer_of[user.id]
            expected = {acks[c]["message_id"] for c in sent[peer.id]}
            await client.wait_until(
                lambda c=client, n=len(expected): len(c.new_messages()) >= n, WAIT, what=f"{len(expected)} messages"
            )
        await asyncio.gather(*(c.request("ping", reply="pong") for c in clients))
        for user in users:
            client, peer = client_of[user.id], peer_of[user.id]
            ids = [m["id"] for m in client.new_messages()]
            assert len(ids) == len(set(ids)), f"{client.name} got a message twice"
            assert set(ids) == {acks[c]["message_id"] for c in sent[peer.id]}, client.name
            synced = await _sync_all(client, conversation_of[user.id])
            assert {m["id"] for m in synced} == {acks[c]["message_id"] for c in sent[user.id] + sent[peer.id]}

        assert _records_processed(restarted) > 0, "the restarted run_logic took over nothing"
        for a, _ in pairs:
            assert await sync_to_async(_seqs_in_db)(conversation_of[a.id]) == list(range(1, 2 * per_sender + 1))
    finally:
        await _close(clients)
