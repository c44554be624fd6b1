"""Read receipts (issue 10): RECEIPT envelopes when a read moves the pointer (one per
gateway), the send_read_receipts setting, read_count in group history/sync,
peer_last_read_seq in the conversation list, GET conversations/{id}/receipts, gRPC MarkRead.

Envelopes are checked by consuming the downstream topics of the memory bus."""
from __future__ import annotations

import time
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.bus import downstream_topic, get_consumer, reset_bus
from messaging.presence import get_presence, reset_presence
from messaging.services import send_message
from protos.gochat.v1 import envelopes_pb2 as pb

pytestmark = pytest.mark.django_db(transaction=True)

RECEIPT = pb.DownstreamMessage.RECEIPT
READ = pb.DownstreamMessage.READ


@pytest.fixture
def fresh_bus(settings):
    settings.BUS_BACKEND = "memory"
    settings.PRESENCE_BACKEND = "memory"
    reset_bus()
    reset_presence()
    yield
    reset_bus()
    reset_presence()


def _drain(topic: str, *, wait: float = 0.5) -> list[pb.DownstreamMessage]:
    """Every envelope on `topic` so far (the memory bus hands a new group everything)."""
    consumer = get_consumer([topic], f"test-drain-{uuid.uuid4().hex[:8]}")
    envelopes: list[pb.DownstreamMessage] = []
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            envelopes.extend(pb.DownstreamMessage.FromString(r.value) for r in consumer.consume(1000, 0.1))
    finally:
        consumer.close()
    return envelopes


def _kind(envelopes, kind):  # noqa: ANN001, ANN202
    return [e for e in envelopes if e.kind == kind]


def _group(group_of, n: int = 4):  # noqa: ANN001, ANN202
    from messaging.models import ConversationMember

    group = group_of(n)
    conversation_id = group.conversation.id
    members = list(
        ConversationMember.objects.filter(conversation_id=conversation_id).order_by("user_id").values_list("user_id", flat=True)
    )
    return group, conversation_id, members


def _send(sender_id: int, conversation_id: int, count: int, prefix: str = "m") -> None:
    for n in range(count):
        send_message(sender_id=sender_id, conversation_id=conversation_id, content=f"{prefix}{n}", client_msg_id=f"{prefix}{n}")


def _set_receipts(user_id: int, on: bool) -> None:
    from accounts.models import User

    User.objects.filter(id=user_id).update(send_read_receipts=on)


# --- routing: one RECEIPT per gateway, only when the pointer moved ---------------------------------


def test_read_sends_one_receipt_envelope_per_gateway_to_the_other_members(
    fresh_bus, alice, group_of, client_for
):
    _, conversation_id, members = _group(group_of)
    reader, both, offline = [m for m in members if m != alice.id]
    presence = get_presence()
    gw_a, gw_b = f"gw-a-{uuid.uuid4().hex[:6]}", f"gw-b-{uuid.uuid4().hex[:6]}"
    presence.connect(alice.id, "alice-1", gw_a)
    presence.connect(reader, "reader-1", gw_a)
    presence.connect(both, "both-1", gw_a)
    presence.connect(both, "both-2", gw_b)
    _send(alice.id, conversation_id, 2)
    from accounts.models import User

    reply = client_for(User.objects.get(id=reader)).post(
        f"/api/v1/conversations/{conversation_id}/read", {"seq": 2}, format="json"
    )
    assert reply.status_code == 200, reply.content
    on_a, on_b = _drain(downstream_topic(gw_a)), _drain(downstream_topic(gw_b))
    (receipt_a,) = _kind(on_a, RECEIPT)
    (receipt_b,) = _kind(on_b, RECEIPT)
    assert sorted(receipt_a.recipient_user_ids) == sorted([alice.id, both])
    assert list(receipt_b.recipient_user_ids) == [both]
    for receipt in (receipt_a, receipt_b):
        assert (receipt.conversation_id, receipt.reader_id, receipt.read_seq) == (conversation_id, reader, 2)
    assert offline not in receipt_a.recipient_user_ids
    # The reader's own device gets READ, never a receipt.
    assert [list(e.recipient_user_ids) for e in _kind(on_a, READ)] == [[reader]]

    # The same read again moves nothing: no second receipt (READ is still sent).
    client_for(User.objects.get(id=reader)).post(f"/api/v1/conversations/{conversation_id}/read", {"seq": 2}, format="json")
    client_for(User.objects.get(id=reader)).post(f"/api/v1/conversations/{conversation_id}/read", {"seq": 1}, format="json")
    assert len(_kind(_drain(downstream_topic(gw_a)), RECEIPT)) == 1


def test_no_receipt_when_the_reader_turned_receipts_off(fresh_bus, alice, bob, single_chat, client_for):
    presence = get_presence()
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    presence.connect(alice.id, "alice-1", gateway)
    _send(alice.id, single_chat.id, 1)
    reply = client_for(bob).patch("/api/v1/users/profile", {"send_read_receipts": False}, format="json")
    assert reply.status_code == 200 and reply.json()["send_read_receipts"] is False
    reply = client_for(bob).post(f"/api/v1/conversations/{single_chat.id}/read", {"seq": 1}, format="json")
    assert reply.json()["last_read_seq"] == 1
    assert _kind(_drain(downstream_topic(gateway)), RECEIPT) == []


def test_no_receipt_frames_above_receipt_max_group_size(fresh_bus, settings, alice, group_of, client_for):
    from accounts.models import User

    settings.RECEIPT_MAX_GROUP_SIZE = 3
    _, conversation_id, members = _group(group_of, 4)
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    get_presence().connect(alice.id, "alice-1", gateway)
    _send(alice.id, conversation_id, 1)
    reader = User.objects.get(id=[m for m in members if m != alice.id][0])
    client_for(reader).post(f"/api/v1/conversations/{conversation_id}/read", {"seq": 1}, format="json")
    assert _kind(_drain(downstream_topic(gateway)), RECEIPT) == []
    # ...but the count is there in history.
    history = client_for(alice).get(f"/api/v1/messages/history?conversation_id={conversation_id}").json()
    assert history["messages"][0]["read_count"] == 1


# --- read_count ---------------------------------------------------------------------------------------


def m1_user(user_id: int):  # noqa: ANN201
    from accounts.models import User

    return User.objects.get(id=user_id)


def _read(user_id: int, conversation_id: int, seq: int) -> None:
    from messaging.services import mark_read

    mark_read(user_id=user_id, conversation_id=conversation_id, seq=seq)


def test_read_count_counts_other_members_with_receipts_on(fresh_bus, alice, group_of, client_for):
    _, conversation_id, members = _group(group_of, 4)
    m1, m2, m3 = [m for m in members if m != alice.id]
    _send(alice.id, conversation_id, 3)  # seq 1..3, alice has read them (she wrote them)
    _read(m1, conversation_id, 3)
    _read(m2, conversation_id, 1)
    _read(m3, conversation_id, 3)
    _set_receipts(m3, False)  # read everything, but tells nobody
    _send(m1, conversation_id, 1, prefix="x")  # seq 4, from m1
    history = client_for(alice).get(f"/api/v1/messages/history?conversation_id={conversation_id}").json()
    counts = {m["seq"]: m["read_count"] for m in history["messages"]}
    # seq 1: m1, m2; seq 2, 3: m1; seq 4: nobody (m1 sent it, alice is at 3, m2 at 1, m3 off).
    assert counts == {1: 2, 2: 1, 3: 1, 4: 0}
    _read(m2, conversation_id, 4)
    _read(alice.id, conversation_id, 4)
    history = client_for(m1_user(m1)).get(f"/api/v1/messages/history?conversation_id={conversation_id}").json()
    assert {m["seq"]: m["read_count"] for m in history["messages"]} == {1: 2, 2: 2, 3: 2, 4: 2}


def test_single_chat_history_has_no_read_count(fresh_bus, alice, single_chat, client_for):
    _send(alice.id, single_chat.id, 1)
    history = client_for(alice).get(f"/api/v1/messages/history?conversation_id={single_chat.id}").json()
    assert "read_count" not in history["messages"][0]


def _queries(fn) -> int:  # noqa: ANN001
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_read_count_costs_one_query_per_page_whatever_its_size(fresh_bus, alice, bob, single_chat, group_of):
    from messaging.selectors import conversation_history

    _, conversation_id, members = _group(group_of, 6)
    _send(alice.id, conversation_id, 30)
    for n, member in enumerate(members):
        _read(member, conversation_id, 5 * n)
    _send(alice.id, single_chat.id, 30, prefix="s")

    def page(cid: int, limit: int):  # noqa: ANN202
        return lambda: conversation_history(user_id=alice.id, conversation_id=cid, limit=limit)

    single = _queries(page(single_chat.id, 20))
    assert _queries(page(conversation_id, 1)) == single + 1
    assert _queries(page(conversation_id, 20)) == single + 1
    assert _queries(page(conversation_id, 30)) == single + 1


# --- peer_last_read_seq -------------------------------------------------------------------------------


def test_peer_last_read_seq_in_list_and_detail(fresh_bus, alice, bob, single_chat, group_of, client_for):
    _send(alice.id, single_chat.id, 3)
    _read(bob.id, single_chat.id, 2)
    group_of(3)
    listed = {c["id"]: c for c in client_for(alice).get("/api/v1/conversations").json()}
    assert listed[str(single_chat.id)]["peer_last_read_seq"] == 2
    assert [c["peer_last_read_seq"] for c in listed.values() if c["type"] == "group"] == [None]
    detail = client_for(alice).get(f"/api/v1/conversations/{single_chat.id}").json()
    assert detail["peer_last_read_seq"] == 2
    # Bob's own view shows alice's pointer (at 3: she wrote them).
    assert client_for(bob).get(f"/api/v1/conversations/{single_chat.id}").json()["peer_last_read_seq"] == 3
    _set_receipts(bob.id, False)
    assert client_for(alice).get(f"/api/v1/conversations/{single_chat.id}").json()["peer_last_read_seq"] is None


# --- GET conversations/{id}/receipts ------------------------------------------------------------------


def test_receipts_endpoint_lists_members_with_receipts_on_paged(fresh_bus, alice, group_of, client_for):
    _, conversation_id, members = _group(group_of, 5)
    _send(alice.id, conversation_id, 4)
    for n, member in enumerate(members):
        if member != alice.id:
            _read(member, conversation_id, n)
    _set_receipts(members[-1], False)
    client = client_for(alice)
    first = client.get(f"/api/v1/conversations/{conversation_id}/receipts?limit=2").json()
    assert len(first["members"]) == 2 and first["next"] is not None
    rest = client.get(f"/api/v1/conversations/{conversation_id}/receipts?after={first['next']}&limit=10").json()
    assert rest["next"] is None
    listed = {int(m["user_id"]): m["last_read_seq"] for m in first["members"] + rest["members"]}
    expected = {m: (4 if m == alice.id else n) for n, m in enumerate(members[:-1])}
    assert listed == expected


def test_receipts_endpoint_refuses_non_members_and_bad_input(fresh_bus, single_chat, carol, alice, client_for):
    reply = client_for(carol).get(f"/api/v1/conversations/{single_chat.id}/receipts")
    assert (reply.status_code, reply.json()["code"]) == (403, 1005)
    reply = client_for(alice).get(f"/api/v1/conversations/{single_chat.id}/receipts?limit=0")
    assert (reply.status_code, reply.json()["code"]) == (400, 1001)
    reply = client_for(alice).get(f"/api/v1/conversations/{single_chat.id}/receipts?after=x")
    assert (reply.status_code, reply.json()["code"]) == (400, 1001)
    reply = client_for(alice).get(f"/api/v1/conversations/{single_chat.id + 1}/receipts")
    assert (reply.status_code, reply.json()["code"]) == (404, 1003)


# --- the setting --------------------------------------------------------------------------------------


def test_profile_setting_defaults_on_and_patches(fresh_bus, alice, client_for):
    client = client_for(alice)
    assert client.get("/api/v1/users/profile").json()["send_read_receipts"] is True
    assert client.patch("/api/v1/users/profile", {"send_read_receipts": False}, format="json").json()[
        "send_read_receipts"
    ] is False
    reply = client.patch("/api/v1/users/profile", {"send_read_receipts": "no"}, format="json")
    assert (reply.status_code, reply.json()["code"]) == (400, 1001)
    assert "send_read_receipts" in reply.json()["details"]
    # PUT without it keeps the current value (clients older than the field).
    reply = client.put(
        "/api/v1/users/profile", {"nickname": "A", "email": "", "avatar": "", "status": ""}, format="json"
    )
    assert reply.status_code == 200 and reply.json()["send_read_receipts"] is False


# --- gRPC MarkRead --------------------------------------------------------------------------------------


def test_grpc_mark_read_sends_the_receipt(fresh_bus, settings, alice, bob, single_chat):
    from messaging.grpc.server import build_server
    from protos.gochat.v1 import logic_pb2, logic_pb2_grpc
    import grpc
    from rest_framework_simplejwt.tokens import RefreshToken

    settings.GRPC_SERVICE_TOKEN = "test-service-token"
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    get_presence().connect(alice.id, "alice-1", gateway)
    _send(alice.id, single_chat.id, 2)
    server, port, _ = build_server(address="127.0.0.1:0", max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            logic = logic_pb2_grpc.LogicServiceStub(channel)
            metadata = [("authorization", f"Bearer {RefreshToken.for_user(bob).access_token}")]
            reply = logic.MarkRead(logic_pb2.MarkReadRequest(conversation_id=single_chat.id, seq=2), metadata=metadata)
            assert reply.last_read_seq == 2
    finally:
        server.stop(None).wait()
    (receipt,) = _kind(_drain(downstream_topic(gateway)), RECEIPT)
    assert (list(receipt.recipient_user_ids), receipt.reader_id, receipt.read_seq) == ([alice.id], bob.id, 2)
