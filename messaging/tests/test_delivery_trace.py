"""The delivery trace: a message sent over the WebSocket path leaves a timeline (accepted,
persisted, routed, delivered, read) that the admin shows; off means nothing recorded.
Runs on the in-memory ring buffer by default and on Redis when REDIS_URL is set."""
from __future__ import annotations

import json
import time

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from messaging import delivery_trace
from messaging.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _trace_every_message(settings):
    # Production samples 5% by default; these tests follow particular messages.
    settings.DELIVERY_TRACE_SAMPLE_RATE = 1.0

WAIT = 10


async def send(ws, kind, data=None):
    await ws.send_to(text_data=json.dumps({"type": kind, "data": data or {}}))


async def receive(ws):
    return json.loads(await ws.receive_from(timeout=WAIT))


async def _send_and_deliver(ws_client, alice, bob, conversation, client_msg_id="m-1"):
    ws_alice = await ws_client(alice)
    ws_bob = await ws_client(bob)
    await send(
        ws_alice,
        "send-message",
        {"client_msg_id": client_msg_id, "conversation_id": str(conversation.id), "content": "hello"},
    )
    ack = await receive(ws_alice)
    assert ack["type"] == "send-ack"
    new = await receive(ws_bob)
    assert new["type"] == "new-message"
    return ws_alice, ws_bob, int(ack["data"]["message_id"])


def _stages(message_id, *, need=(), timeout=WAIT):
    """The timeline's stages once it holds every stage in `need` (the Redis writer
    thread and the gateway's delivery run beside the test)."""
    deadline = time.monotonic() + timeout
    while True:
        delivery_trace.flush()
        message = Message.objects.get(id=message_id)
        events = delivery_trace.timeline(message_id=message_id, conversation_id=message.conversation_id, seq=message.seq)
        stages = [e["stage"] for e in events]
        if set(need) <= set(stages) or time.monotonic() > deadline:
            return events, stages
        time.sleep(0.05)


def _in_order(stages, expected):
    positions = [stages.index(stage) for stage in expected]
    return positions == sorted(positions)


async def test_ws_message_leaves_an_ordered_timeline(ws_client, alice, bob, single_chat):
    ws_alice, ws_bob, message_id = await _send_and_deliver(ws_client, alice, bob, single_chat)

    events, stages = await database_sync_to_async(_stages)(
        message_id, need=("accepted", "persisted", "routed", "delivered", "acked")
    )
    assert _in_order(stages, ["accepted", "persisted", "routed", "delivered"]), stages
    by_stage = {e["stage"]: e for e in events}
    assert by_stage["accepted"]["sender_id"] == str(alice.id)
    assert by_stage["accepted"]["client_msg_id"] == "m-1"
    assert by_stage["persisted"]["seq"] == 1
    assert by_stage["persisted"]["duplicate"] is False
    # One trace id from the gateway's frame to the recipient's socket.
    assert len({e["trace_id"] for e in events}) == 1
    delivered = by_stage["delivered"]
    assert delivered["socket_count"] == 1
    assert delivered["sockets"][0]["user_id"] == str(bob.id)
    # Bob's socket; alice's only socket is the sending one, which gets the ack instead.
    assert by_stage["routed"]["gateways"] == {delivered["gateway"]: 1}
    assert by_stage["acked"]["sockets"][0]["user_id"] == str(alice.id)
    assert by_stage["routed"]["offline"] == 0


async def test_read_shows_on_the_timeline_and_admin_page(ws_client, alice, bob, single_chat, make_user):
    ws_alice, ws_bob, message_id = await _send_and_deliver(ws_client, alice, bob, single_chat)
    await send(ws_bob, "read", {"conversation_id": str(single_chat.id), "seq": 1})
    # A ping after the read: its pong means the read frame was handled.
    await send(ws_bob, "ping")
    assert (await receive(ws_bob))["type"] == "pong"

    events, stages = await database_sync_to_async(_stages)(message_id, need=("read", "delivered"))
    read = next(e for e in events if e["stage"] == "read")
    assert read["user_id"] == str(bob.id) and read["seq"] == 1

    def admin_pages():
        admin = make_user("admin-m", is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(admin)
        return (
            client.get(f"/admin/messaging/message/{message_id}/trace/"),
            client.get(f"/admin/messaging/message/{message_id}/change/"),
            client.get("/admin/messaging/message/999/trace/"),
        )

    page, change, missing = await database_sync_to_async(admin_pages)()
    assert page.status_code == 200
    html = page.content.decode()
    for stage in ("accepted", "persisted", "routed", "delivered", "read"):
        assert f"<strong>{stage}</strong>" in html
    assert "Bob (user" in html  # read by
    assert f"/admin/messaging/message/{message_id}/trace/" in change.content.decode()
    assert missing.status_code == 404


def test_admin_trace_page_needs_staff(client, alice, single_chat):
    from messaging.services import send_message

    message = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="x", client_msg_id="c1").message
    client.force_login(alice)
    response = client.get(f"/admin/messaging/message/{message.id}/trace/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


async def test_switched_off_records_nothing(settings, ws_client, alice, bob, single_chat):
    settings.DELIVERY_TRACE_ENABLED = False
    _, _, message_id = await _send_and_deliver(ws_client, alice, bob, single_chat, client_msg_id="off-1")
    settings.DELIVERY_TRACE_ENABLED = True
    _, stages = await database_sync_to_async(_stages)(message_id, timeout=0.5)
    assert stages == []


def test_sampling_is_decided_by_trace_id(settings):
    settings.DELIVERY_TRACE_SAMPLE_RATE = 0.5
    ids = [f"{n:032x}" for n in range(400)]
    first = [delivery_trace._sampled(t) for t in ids]
    assert first == [delivery_trace._sampled(t) for t in ids]  # every process agrees
    assert 100 < sum(first) < 300
    settings.DELIVERY_TRACE_SAMPLE_RATE = 0.0
    assert not any(delivery_trace._sampled(t) for t in ids)


@pytest.mark.redis
def test_redis_store_caps_each_key_and_expires(settings):
    import redis

    settings.DELIVERY_TRACE_BACKEND = "redis"
    settings.DELIVERY_TRACE_MAX_EVENTS_PER_KEY = 5
    settings.DELIVERY_TRACE_TTL_SECONDS = 60
    message_id = 7_000_000_000_000 + int(time.time() * 1000) % 1_000_000
    for n in range(8):
        delivery_trace.record("fanout_batch", trace_id="cap-trace", message_id=message_id, batch=n + 1)
    delivery_trace.flush()
    events = delivery_trace.timeline(message_id=message_id)
    assert [e["batch"] for e in events] == [4, 5, 6, 7, 8]  # the newest five
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        assert 0 < client.ttl(f"{delivery_trace.KEY_PREFIX}m:{message_id}") <= 60
    finally:
        client.delete(f"{delivery_trace.KEY_PREFIX}m:{message_id}", f"{delivery_trace.KEY_PREFIX}t:cap-trace")
        client.close()


@pytest.mark.redis
def test_redis_down_drops_and_counts_without_raising(settings):
    from prometheus_client import REGISTRY

    def dropped():
        return REGISTRY.get_sample_value("gochat_delivery_trace_dropped_total") or 0.0

    settings.DELIVERY_TRACE_BACKEND = "redis"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    before = dropped()
    delivery_trace.record("persisted", trace_id="down", message_id=1, seq=1)  # does not raise
    try:
        delivery_trace.flush()  # the writer thread may have taken the batch first
    except Exception:  # noqa: BLE001
        pass
    deadline = time.monotonic() + 5
    while dropped() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dropped() == before + 1
